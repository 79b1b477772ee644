using System.Buffers;
using System.Text.Json;

namespace Flotilla.Gateway.Protocol;

/// <summary>Writes OpenAI <c>chat.completion.chunk</c> payloads (the JSON after <c>data: </c>) for answers the gateway makes itself.</summary>
internal readonly record struct ChunkJson(string Id, long Created, string Model)
{
    /// <summary>A chunk with one choice: its delta (written by <paramref name="delta"/>) and finish reason.</summary>
    /// <param name="usageNull">Write <c>"usage":null</c>, as OpenAI does on every chunk when usage was asked for.</param>
    public byte[] Delta(Action<Utf8JsonWriter>? delta, string? finishReason, bool usageNull = false) => Write(writer =>
    {
        writer.WriteStartObject();
        writer.WriteNumber("index", 0);
        writer.WriteStartObject("delta");
        delta?.Invoke(writer);
        writer.WriteEndObject();
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason");
        }
        else
        {
            writer.WriteString("finish_reason", finishReason);
        }

        writer.WriteEndObject();
    }, usageNull ? static w => w.WriteNull("usage") : null);

    /// <summary>The final usage chunk: no choices, the usage object written by <paramref name="usage"/>.</summary>
    public byte[] Usage(Action<Utf8JsonWriter> usage) => Write(null, writer =>
    {
        writer.WritePropertyName("usage");
        usage(writer);
    });

    private byte[] Write(Action<Utf8JsonWriter>? choice, Action<Utf8JsonWriter>? after)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", Id);
            writer.WriteString("object", "chat.completion.chunk");
            writer.WriteNumber("created", Created);
            writer.WriteString("model", Model);
            writer.WriteStartArray("choices");
            choice?.Invoke(writer);
            writer.WriteEndArray();
            after?.Invoke(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
