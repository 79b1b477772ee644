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
/// </summary>
internal static class TokenEstimator
{
    /// <summary>Output tokens assumed when the request sets no <c>max_tokens</c>.</summary>
    public const long DefaultMaxOutputTokens = 4096;

    private const int PerMessage = 4;
    private static readonly Lazy<Tokenizer> Encoding = new(() => TiktokenTokenizer.CreateForModel("gpt-4o"), LazyThreadSafetyMode.ExecutionAndPublication);

    public static long MaxOutput(ChatRequest request) => request.MaxTokens ?? DefaultMaxOutputTokens;

    public static long EstimateInput(ChatRequest request)
    {
        var root = request.Document;
        long tokens = 3;
        if (root.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                tokens += PerMessage + CountContent(message);
            }
        }
        else if (root.TryGetProperty("input", out var input))
        {
            tokens += input.ValueKind == JsonValueKind.String
                ? Count(input.GetString())
                : input.EnumerateArray().Sum(i => i.ValueKind == JsonValueKind.String ? Count(i.GetString()) : 0);
        }

        if (root.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array)
        {
            // Tool schemas are sent to the model too; count their JSON.
            tokens += Count(tools.GetRawText());
        }

        return tokens;
    }

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

    private static long CountContent(JsonElement message)
    {
        long tokens = 0;
        if (message.TryGetProperty("content", out var content))
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                tokens += Count(content.GetString());
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        tokens += Count(text.GetString());
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
                    tokens += Count(function.TryGetProperty("name", out var n) ? n.GetString() : null)
                        + Count(function.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null);
                }
            }
        }

        return tokens;
    }
}
