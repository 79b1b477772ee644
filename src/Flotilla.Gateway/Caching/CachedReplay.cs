using System.Text.Json;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Caching;

/// <summary>Turns a cached <c>chat.completion</c> back into the chunks of a stream, for streaming callers that hit the cache.</summary>
internal static class CachedReplay
{
    public static List<byte[]> ToChunks(byte[] completion, bool includeUsage)
    {
        using var document = JsonDocument.Parse(completion);
        var root = document.RootElement;
        var id = root.TryGetProperty("id", out var i) ? i.GetString() : "chatcmpl-cached";
        var model = root.TryGetProperty("model", out var m) ? m.GetString() : "";
        var created = root.TryGetProperty("created", out var c) && c.TryGetInt64(out var t) ? t : 0;
        var choice = root.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        var finish = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : "stop";
        var chunks = new List<byte[]>(5);
        var json = new ChunkJson(id ?? "chatcmpl-cached", created, model ?? "");
        byte[] Chunk(Action<Utf8JsonWriter>? delta, string? finishReason, bool usageOnly = false) =>
            usageOnly && root.TryGetProperty("usage", out var usage)
                ? json.Usage(usage.WriteTo)
                : json.Delta(delta, finishReason);

        chunks.Add(Chunk(w => { w.WriteString("role", "assistant"); w.WriteString("content", ""); }, null));
        if (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
        {
            chunks.Add(Chunk(w => w.WriteString("content", text), null));
        }

        if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            chunks.Add(Chunk(w =>
            {
                w.WriteStartArray("tool_calls");
                var index = 0;
                foreach (var call in calls.EnumerateArray())
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", index++);
                    foreach (var property in call.EnumerateObject())
                    {
                        property.WriteTo(w);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }, null));
        }

        chunks.Add(Chunk(null, finish));
        if (includeUsage)
        {
            chunks.Add(Chunk(null, null, usageOnly: true));
        }

        return chunks;
    }
}
