using System.Buffers;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Caching;

/// <summary>
/// Rebuilds a <c>chat.completion</c> from the chunks of a stream as they are relayed, so a streamed answer can be
/// cached. Answers with tool calls are not assembled (the cache does not keep streamed tool calls).
/// </summary>
internal sealed class CompletionAssembler
{
    private readonly StringBuilder _content = new();
    private string? _id;
    private string? _finishReason;

    public bool HasToolCalls { get; private set; }

    public void Add(ReadOnlySpan<byte> chunk)
    {
        if (HasToolCalls)
        {
            return;
        }

        try
        {
            using var document = JsonDocument.Parse(chunk.ToArray());
            var root = document.RootElement;
            _id ??= root.TryGetProperty("id", out var id) ? id.GetString() : null;
            if (!root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
            {
                return;
            }

            var choice = choices[0];
            if (choice.TryGetProperty("delta", out var delta))
            {
                if (delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    _content.Append(content.GetString());
                }

                if (delta.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
                {
                    HasToolCalls = true;
                }
            }

            if (choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String)
            {
                _finishReason = finish.GetString();
            }
        }
        catch (JsonException)
        {
            HasToolCalls = true; // Not understood: do not cache it.
        }
    }

    /// <summary>The assembled completion, or null when the stream cannot be cached.</summary>
    public byte[]? Build(string model, TokenUsage usage, long created)
    {
        if (HasToolCalls || _finishReason is null)
        {
            return null;
        }

        var buffer = new ArrayBufferWriter<byte>(256 + _content.Length);
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", _id ?? "chatcmpl-cached");
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", created);
            writer.WriteString("model", model);
            writer.WriteStartArray("choices");
            writer.WriteStartObject();
            writer.WriteNumber("index", 0);
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteString("content", _content.ToString());
            writer.WriteEndObject();
            writer.WriteString("finish_reason", _finishReason);
            writer.WriteEndObject();
            writer.WriteEndArray();
            writer.WriteStartObject("usage");
            writer.WriteNumber("prompt_tokens", usage.InputTokens);
            writer.WriteNumber("completion_tokens", usage.OutputTokens);
            writer.WriteNumber("total_tokens", usage.Total);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
