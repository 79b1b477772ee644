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

    public static int Count(string? text) => string.IsNullOrEmpty(text) ? 0 : Encoding.Value.CountTokens(text);

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
