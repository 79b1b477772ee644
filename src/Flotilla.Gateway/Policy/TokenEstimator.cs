using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text.Json;
using Flotilla.Gateway.Protocol;
using Microsoft.ML.Tokenizers;

namespace Flotilla.Gateway.Policy;

/// <summary>
/// Estimates a request's tokens before it is sent, for budget reservations and token rate limits: the o200k_base
/// encoding (GPT-4o family) over every message's text and tool-call arguments, plus the per-message framing OpenAI
/// documents. Other providers tokenise differently; the estimate is reconciled with the provider's usage afterwards.
/// <see cref="UpperBound"/> is the cheap form the request path uses first: every o200k token is at least one UTF-8 byte, so
/// a text's byte length bounds its count from above, and a policy asks for the tokenizer's count only when the bound would
/// not fit under a limit.
/// </summary>
internal static class TokenEstimator
{
    /// <summary>Output tokens assumed when the request sets no <c>max_tokens</c>.</summary>
    public const long DefaultMaxOutputTokens = 4096;

    private const int PerMessage = 4;
    private static readonly Lazy<Tokenizer> Encoding = new(() => TiktokenTokenizer.CreateForModel("gpt-4o"), LazyThreadSafetyMode.ExecutionAndPublication);

    public static long MaxOutput(ChatRequest request) => request.MaxTokens ?? DefaultMaxOutputTokens;

    /// <summary>The tokenizer's estimate: o200k counts of every text plus the message framing.</summary>
    public static long EstimateInput(ChatRequest request) => Walk(request, exact: true);

    /// <summary>
    /// An upper bound of <see cref="EstimateInput"/> for the price of a walk over the parsed body: each text's UTF-8 length
    /// (taken from its raw JSON, whose escapes are never shorter than what they stand for) in place of its token count.
    /// </summary>
    public static long UpperBound(ChatRequest request) => Walk(request, exact: false);

    private static long Walk(ChatRequest request, bool exact)
    {
        var root = request.Document;
        long tokens = 3;
        if (root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                tokens += PerMessage + CountContent(message, exact);
            }
        }
        else if (root.TryGetProperty("input", out var input))
        {
            if (input.ValueKind == JsonValueKind.String)
            {
                tokens += Text(input, exact);
            }
            else if (input.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in input.EnumerateArray())
                {
                    tokens += item.ValueKind == JsonValueKind.String ? Text(item, exact) : 0;
                }
            }
        }

        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            // Tool schemas are sent to the model too; count their JSON.
            tokens += exact ? Count(tools.GetRawText()) : JsonMarshal.GetRawUtf8Value(tools).Length;
        }

        return tokens;
    }

    /// <summary>A JSON string's tokens, or its UTF-8 length as their upper bound (the raw value less its two quotes).</summary>
    private static long Text(JsonElement text, bool exact) => exact ? Count(text.GetString()) : JsonMarshal.GetRawUtf8Value(text).Length - 2;

    /// <summary>Texts shorter than this are counted every time: hashing them costs about as much as counting.</summary>
    private const int MinRememberedLength = 256;

    /// <summary>How many texts' counts are remembered before the memory is cleared and refilled.</summary>
    private const int MaxRemembered = 50_000;

    /// <summary>
    /// Token counts of long texts seen before, by a 128-bit hash of the text (a collision is out of practical reach). A loop
    /// resends its whole history on every call; with this only its new messages go through the tokenizer.
    /// </summary>
    private static readonly ConcurrentDictionary<UInt128, int> Remembered = new();

    public static int Count(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return 0;
        }

        if (text.Length < MinRememberedLength)
        {
            return Encoding.Value.CountTokens(text);
        }

        var key = XxHash128.HashToUInt128(MemoryMarshal.AsBytes(text.AsSpan()));
        if (Remembered.TryGetValue(key, out var count))
        {
            return count;
        }

        count = Encoding.Value.CountTokens(text);
        if (Remembered.Count >= MaxRemembered)
        {
            Remembered.Clear();
        }

        Remembered.TryAdd(key, count);
        return count;
    }

    /// <summary>The tokenizer's count, never remembered (benchmarks and tests compare against it).</summary>
    internal static int CountFresh(string text) => Encoding.Value.CountTokens(text);

    private static long CountContent(JsonElement message, bool exact)
    {
        long tokens = 0;
        if (message.TryGetProperty("content", out var content))
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                tokens += Text(content, exact);
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        tokens += Text(text, exact);
                    }
                    else if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("image_url", out _))
                    {
                        // A detailed image costs up to ~1,100 tokens on GPT-4o; reserve that much.
                        tokens += 1105;
                    }
                }
            }
        }

        if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            foreach (var call in calls.EnumerateArray())
            {
                if (call.TryGetProperty("function", out var function))
                {
                    tokens += (function.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? Text(n, exact) : 0)
                        + (function.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? Text(a, exact) : 0);
                }
            }
        }

        return tokens;
    }
}
