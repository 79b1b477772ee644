using System.Buffers;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;

namespace Flotilla.Gateway.Endpoints.Messages;

/// <summary>
/// Writes what the governed path answered (a <c>chat.completion</c>, or an error) as Anthropic Messages JSON: the inverse of
/// <see cref="AnthropicTranslator.ToChatCompletion"/>. Thinking blocks an Anthropic target returned ride along in the
/// completion's <c>thinking_blocks</c> and come back out here intact.
/// </summary>
internal static class MessagesAnswerTranslator
{
    public static byte[] FromCompletion(ReadOnlySpan<byte> completion, string messageId)
    {
        var reader = new Utf8JsonReader(completion);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        var choice = root.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        var finish = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
        var usage = root.TryGetProperty("usage", out var u) ? MessagesUsage.FromChat(u) : default;

        var buffer = new ArrayBufferWriter<byte>(completion.Length + 256);
        using (var writer = new Utf8JsonWriter(buffer, AnthropicTranslator.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id"u8, messageId);
            writer.WriteString("type"u8, "message"u8);
            writer.WriteString("role"u8, "assistant"u8);
            writer.WriteString("model"u8, root.TryGetProperty("model", out var model) ? model.GetString() : "");
            writer.WriteStartArray("content"u8);
            if (message.TryGetProperty("thinking_blocks", out var thinking) && thinking.ValueKind == JsonValueKind.Array)
            {
                foreach (var block in thinking.EnumerateArray())
                {
                    block.WriteTo(writer);
                }
            }

            if (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
            {
                writer.WriteStartObject();
                writer.WriteString("type"u8, "text"u8);
                writer.WriteString("text"u8, text);
                writer.WriteEndObject();
            }

            if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    var function = call.GetProperty("function");
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "tool_use"u8);
                    writer.WriteString("id"u8, call.GetProperty("id").GetString());
                    writer.WriteString("name"u8, function.GetProperty("name").GetString());
                    writer.WritePropertyName("input"u8);
                    WriteInput(function.TryGetProperty("arguments", out var arguments) ? arguments.GetString() : null, writer);
                    writer.WriteEndObject();
                }
            }

            writer.WriteEndArray();
            writer.WriteString("stop_reason"u8, StopReason(finish));
            writer.WriteNull("stop_sequence"u8);
            usage.WriteTo(writer, "usage"u8);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>OpenAI <c>finish_reason</c> to Anthropic <c>stop_reason</c>: the inverse of <see cref="AnthropicTranslator.MapStopReason"/>.</summary>
    public static string StopReason(string? finishReason) => finishReason switch
    {
        "length" => "max_tokens",
        "tool_calls" or "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    };

    /// <summary>
    /// Tool arguments arrive as a string of JSON; Anthropic's <c>input</c> is the object itself. Arguments that are not an
    /// object (a model's malformed output) are kept, as the string, under <c>arguments</c> rather than dropped.
    /// </summary>
    public static void WriteInput(string? arguments, Utf8JsonWriter writer)
    {
        if (string.IsNullOrWhiteSpace(arguments))
        {
            writer.WriteStartObject();
            writer.WriteEndObject();
            return;
        }

        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                parsed.RootElement.WriteTo(writer);
                return;
            }
        }
        catch (JsonException)
        {
        }

        writer.WriteStartObject();
        writer.WriteString("arguments"u8, arguments);
        writer.WriteEndObject();
    }

    /// <summary>An error in Anthropic's shape: <c>{"type":"error","error":{"type","message"}}</c>.</summary>
    public static byte[] Error(int status, string message)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "error"u8);
            writer.WriteStartObject("error"u8);
            writer.WriteString("type"u8, ErrorType(status));
            writer.WriteString("message"u8, message);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>An upstream's refusal (OpenAI error JSON after the provider's translation) in Anthropic's shape.</summary>
    public static byte[] ErrorFromChat(int status, ReadOnlySpan<byte> body)
    {
        string? message = null;
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var text) && text.ValueKind == JsonValueKind.String)
            {
                message = text.GetString();
            }
        }
        catch (JsonException)
        {
        }

        return Error(status, message ?? $"The upstream refused the request with status {status}.");
    }

    /// <summary>Anthropic's error type for an HTTP status (<see href="https://docs.anthropic.com/en/api/errors"/>).</summary>
    public static string ErrorType(int status) => status switch
    {
        400 or 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 or 503 => "overloaded_error",
        _ => "api_error",
    };
}

/// <summary>
/// Anthropic's usage counters from OpenAI's: <c>prompt_tokens</c> includes cache reads (<c>cached_tokens</c>) and cache
/// writes (<c>cache_creation_tokens</c>, which Flotilla's Anthropic provider adds), which Anthropic counts apart.
/// </summary>
internal readonly record struct MessagesUsage(long Input, long Output, long CacheRead, long CacheCreation)
{
    public static MessagesUsage FromChat(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return default;
        }

        long Read(JsonElement element, string name) =>
            element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
            && value.TryGetInt64(out var number) ? number : 0;

        var details = usage.TryGetProperty("prompt_tokens_details", out var d) ? d : default;
        var cacheRead = Read(details, "cached_tokens");
        var cacheCreation = Read(details, "cache_creation_tokens");
        return new MessagesUsage(Math.Max(0, Read(usage, "prompt_tokens") - cacheRead - cacheCreation), Read(usage, "completion_tokens"), cacheRead, cacheCreation);
    }

    public static MessagesUsage FromTokens(TokenUsage usage) => new(usage.InputTokens, usage.OutputTokens, 0, 0);

    public void WriteTo(Utf8JsonWriter writer, ReadOnlySpan<byte> name)
    {
        writer.WriteStartObject(name);
        writer.WriteNumber("input_tokens"u8, Input);
        writer.WriteNumber("cache_creation_input_tokens"u8, CacheCreation);
        writer.WriteNumber("cache_read_input_tokens"u8, CacheRead);
        writer.WriteNumber("output_tokens"u8, Output);
        writer.WriteEndObject();
    }
}
