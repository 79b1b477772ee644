using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Providers.Simulated;

/// <summary>
/// The built-in provider: offline and deterministic, so the quickstart, demos and tests work with no keys.
/// It answers text derived from the last user message, calls a tool when tools are offered (the one named in the
/// message, else the first) with arguments shaped by the tool's schema, summarises tool results, and embeds text
/// as a normalised hashed bag of words (similar texts get similar vectors).
/// </summary>
internal sealed class SimulatedProvider(ProviderConfig config, TimeProvider time) : IModelProvider
{
    public const int EmbeddingDimensions = 256;

    public ProviderConfig Config => config;

    public async Task<UpstreamReply> SendAsync(UpstreamCall call, CancellationToken cancellationToken)
    {
        var simulation = config.Simulation;
        if (simulation.LatencyMs > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(simulation.LatencyMs), time, cancellationToken);
        }

        if (simulation.FailWithStatus is { } status)
        {
            var body = ErrorWriter.ToJson($"simulated failure of provider '{config.Name}'", "api_error", "simulated_failure");
            return UpstreamReply.Failed(AttemptOutcome.Status, status, $"provider '{config.Name}' answered {status}: simulated failure", body);
        }

        var request = call.Request.Document;
        if (call.Kind == CallKind.Embeddings)
        {
            return Embed(request, call.Model.Name);
        }

        var answer = call.Model.Script.Count > 0 ? Scripted(request, call.Model.Script) : Answer(request);
        var id = "chatcmpl-sim" + Hash(call.Request.Body).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        var usage = new TokenUsage(EstimateTokens(call.Request.Body.Length / 4), answer.OutputTokens);
        if (!call.Request.Stream)
        {
            return UpstreamReply.Answer(WriteCompletion(id, created, call.Model.Name, answer, usage), usage);
        }

        return UpstreamReply.Streaming(new SimulatedStream(
            Chunks(id, created, call.Model.Name, answer, usage, call.Request.IncludeUsage), usage, simulation.ChunkDelayMs, time));
    }

    private static long EstimateTokens(long value) => Math.Max(1, value);

    /// <summary>An answer: text, or tool calls (one, or several in one answer for a script's <c>calls</c>).</summary>
    private sealed record SimulatedAnswer(string? Text, IReadOnlyList<(string Id, string Name, string Arguments)> Calls)
    {
        public SimulatedAnswer(string text)
            : this(text, [])
        {
        }

        public bool CallsTools => Calls.Count > 0;

        public long OutputTokens => Math.Max(1, ((Text?.Length ?? 0) + Calls.Sum(c => c.Arguments.Length + c.Name.Length)) / 4);
    }

    /// <summary>
    /// The scripted step for this conversation: the one whose index is the number of assistant turns so far. Past the end of
    /// the script the model says so (and the loop ends, as a model that stops calling tools ends it).
    /// </summary>
    private static SimulatedAnswer Scripted(JsonElement request, IReadOnlyList<ScriptStep> script)
    {
        var messages = request.GetProperty("messages");
        var turns = 0;
        var lastToolResult = "";
        foreach (var message in messages.EnumerateArray())
        {
            var role = message.TryGetProperty("role", out var r) ? r.GetString() : null;
            if (role == "assistant")
            {
                turns++;
            }
            else if (role == "tool")
            {
                lastToolResult = ContentText(message);
            }
        }

        if (turns >= script.Count)
        {
            return new SimulatedAnswer($"The script has {script.Count} steps and all of them are done.");
        }

        var step = script[turns];
        if (step.Calls.Count > 0)
        {
            return new SimulatedAnswer(null, [.. step.Calls.Select((c, k) =>
                ($"call_{turns}_{k}_" + Hash(Encoding.UTF8.GetBytes(c.Tool + c.ArgumentsJson)).ToString("x8", System.Globalization.CultureInfo.InvariantCulture), c.Tool, c.ArgumentsJson))]);
        }

        return new SimulatedAnswer(step.LastToolResult ? lastToolResult : step.Text ?? "");
    }

    private static SimulatedAnswer Answer(JsonElement request)
    {
        var messages = request.GetProperty("messages");
        var last = messages[messages.GetArrayLength() - 1];
        var role = last.TryGetProperty("role", out var r) ? r.GetString() : "user";
        var lastText = ContentText(last);
        if (role == "tool")
        {
            return new SimulatedAnswer($"Based on the tool result: {Clip(lastText, 200)}");
        }

        var toolChoice = request.TryGetProperty("tool_choice", out var choice) ? choice : default;
        var toolsOffered = request.TryGetProperty("tools", out var tools) && tools.ValueKind == JsonValueKind.Array && tools.GetArrayLength() > 0;
        if (toolsOffered && !(toolChoice.ValueKind == JsonValueKind.String && toolChoice.GetString() == "none"))
        {
            var tool = PickTool(tools, toolChoice, lastText);
            if (tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("function", out var function))
            {
                var name = function.GetProperty("name").GetString() ?? "tool";
                var arguments = ArgumentsFor(function, lastText);
                var callId = "call_" + Hash(Encoding.UTF8.GetBytes(name + arguments)).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
                return new SimulatedAnswer(null, [(callId, name, arguments)]);
            }
        }

        return new SimulatedAnswer($"Simulated answer to: {Clip(lastText, 300)}");
    }

    private static JsonElement PickTool(JsonElement tools, JsonElement toolChoice, string text)
    {
        if (toolChoice.ValueKind == JsonValueKind.Object && toolChoice.TryGetProperty("function", out var forced)
            && forced.TryGetProperty("name", out var forcedName))
        {
            foreach (var tool in tools.EnumerateArray())
            {
                if (tool.TryGetProperty("function", out var f) && f.TryGetProperty("name", out var n) && n.GetString() == forcedName.GetString())
                {
                    return tool;
                }
            }
        }

        foreach (var tool in tools.EnumerateArray())
        {
            if (tool.TryGetProperty("function", out var f) && f.TryGetProperty("name", out var n)
                && n.GetString() is { Length: > 0 } name && text.Contains(name, StringComparison.OrdinalIgnoreCase))
            {
                return tool;
            }
        }

        return tools[0];
    }

    private static string ArgumentsFor(JsonElement function, string text)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            if (function.TryGetProperty("parameters", out var schema) && schema.TryGetProperty("properties", out var properties)
                && properties.ValueKind == JsonValueKind.Object)
            {
                var required = schema.TryGetProperty("required", out var req) && req.ValueKind == JsonValueKind.Array
                    ? req.EnumerateArray().Select(e => e.GetString()).ToHashSet()
                    : null;
                foreach (var property in properties.EnumerateObject())
                {
                    if (required is not null && !required.Contains(property.Name))
                    {
                        continue;
                    }

                    writer.WritePropertyName(property.Name);
                    var type = property.Value.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : "string";
                    if (property.Value.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array && values.GetArrayLength() > 0)
                    {
                        values[0].WriteTo(writer);
                        continue;
                    }

                    switch (type)
                    {
                        case "integer" or "number": writer.WriteNumberValue(1); break;
                        case "boolean": writer.WriteBooleanValue(true); break;
                        case "array": writer.WriteStartArray(); writer.WriteEndArray(); break;
                        case "object": writer.WriteStartObject(); writer.WriteEndObject(); break;
                        default: writer.WriteStringValue(Clip(text, 80)); break;
                    }
                }
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static string ContentText(JsonElement message)
    {
        if (!message.TryGetProperty("content", out var content))
        {
            return "";
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString() ?? "";
        }

        if (content.ValueKind == JsonValueKind.Array)
        {
            return string.Join(" ", content.EnumerateArray()
                .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out _))
                .Select(p => p.GetProperty("text").GetString()));
        }

        return "";
    }

    private static string Clip(string text, int max)
    {
        text = text.ReplaceLineEndings(" ").Trim();
        return text.Length <= max ? text : text[..max] + "…";
    }

    private static ulong Hash(ReadOnlySpan<byte> data) => XxHash3.HashToUInt64(data);

    private static byte[] WriteCompletion(string id, long created, string model, SimulatedAnswer answer, TokenUsage usage)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", id);
            writer.WriteString("object", "chat.completion");
            writer.WriteNumber("created", created);
            writer.WriteString("model", model);
            writer.WriteStartArray("choices");
            writer.WriteStartObject();
            writer.WriteNumber("index", 0);
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            if (answer.Text is null)
            {
                writer.WriteNull("content");
            }
            else
            {
                writer.WriteString("content", answer.Text);
            }

            if (answer.CallsTools)
            {
                writer.WriteStartArray("tool_calls");
                foreach (var (callId, name, arguments) in answer.Calls)
                {
                    writer.WriteStartObject();
                    writer.WriteString("id", callId);
                    writer.WriteString("type", "function");
                    writer.WriteStartObject("function");
                    writer.WriteString("name", name);
                    writer.WriteString("arguments", arguments);
                    writer.WriteEndObject();
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
            writer.WriteString("finish_reason", answer.CallsTools ? "tool_calls" : "stop");
            writer.WriteEndObject();
            writer.WriteEndArray();
            WriteUsage(writer, usage);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteUsage(Utf8JsonWriter writer, TokenUsage usage)
    {
        writer.WritePropertyName("usage");
        WriteUsageObject(writer, usage);
    }

    private static void WriteUsageObject(Utf8JsonWriter writer, TokenUsage usage)
    {
        writer.WriteStartObject();
        writer.WriteNumber("prompt_tokens", usage.InputTokens);
        writer.WriteNumber("completion_tokens", usage.OutputTokens);
        writer.WriteNumber("total_tokens", usage.Total);
        writer.WriteEndObject();
    }

    private static List<byte[]> Chunks(string id, long created, string model, SimulatedAnswer answer, TokenUsage usage, bool includeUsage)
    {
        var chunks = new List<byte[]>();
        var json = new ChunkJson(id, created, model);
        void Chunk(Action<Utf8JsonWriter>? delta, string? finish, bool usageChunk = false) =>
            chunks.Add(usageChunk
                ? json.Usage(w => WriteUsageObject(w, usage))
                : json.Delta(delta, finish, usageNull: includeUsage));

        Chunk(w => { w.WriteString("role", "assistant"); w.WriteString("content", ""); }, null);
        if (answer.Text is not null)
        {
            foreach (var piece in SplitWords(answer.Text))
            {
                Chunk(w => w.WriteString("content", piece), null);
            }
        }

        var index = 0;
        foreach (var (callId, name, arguments) in answer.Calls)
        {
            var at = index++;
            Chunk(w =>
            {
                w.WriteStartArray("tool_calls");
                w.WriteStartObject();
                w.WriteNumber("index", at);
                w.WriteString("id", callId);
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", name);
                w.WriteString("arguments", "");
                w.WriteEndObject();
                w.WriteEndObject();
                w.WriteEndArray();
            }, null);
            for (var i = 0; i < arguments.Length; i += 16)
            {
                var part = arguments.Substring(i, Math.Min(16, arguments.Length - i));
                Chunk(w =>
                {
                    w.WriteStartArray("tool_calls");
                    w.WriteStartObject();
                    w.WriteNumber("index", at);
                    w.WriteStartObject("function");
                    w.WriteString("arguments", part);
                    w.WriteEndObject();
                    w.WriteEndObject();
                    w.WriteEndArray();
                }, null);
            }
        }

        Chunk(null, answer.CallsTools ? "tool_calls" : "stop");
        if (includeUsage)
        {
            Chunk(null, null, usageChunk: true);
        }

        return chunks;
    }

    private static IEnumerable<string> SplitWords(string text)
    {
        var start = 0;
        for (var i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == ' ')
            {
                yield return text[start..i];
                start = i;
            }
        }
    }

    private UpstreamReply Embed(JsonElement request, string model)
    {
        var input = request.GetProperty("input");
        var texts = new List<string>();
        if (input.ValueKind == JsonValueKind.String)
        {
            texts.Add(input.GetString() ?? "");
        }
        else
        {
            foreach (var item in input.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                {
                    return UpstreamReply.Failed(AttemptOutcome.Status, 400, "the simulated provider embeds strings only",
                        ErrorWriter.ToJson("'input' must be a string or an array of strings for this model.", "invalid_request_error", ErrorCodes.InvalidRequest, "input"));
                }

                texts.Add(item.GetString() ?? "");
            }
        }

        var base64 = request.TryGetProperty("encoding_format", out var format) && format.GetString() == "base64";
        var dimensions = request.TryGetProperty("dimensions", out var d) && d.TryGetInt32(out var dims) && dims is > 0 and <= 4096 ? dims : EmbeddingDimensions;
        long tokens = 0;
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteStartArray("data");
            for (var i = 0; i < texts.Count; i++)
            {
                var vector = Embed(texts[i], dimensions);
                tokens += Math.Max(1, texts[i].Length / 4);
                writer.WriteStartObject();
                writer.WriteString("object", "embedding");
                writer.WriteNumber("index", i);
                if (base64)
                {
                    var bytes = new byte[vector.Length * 4];
                    for (var j = 0; j < vector.Length; j++)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(j * 4), vector[j]);
                    }

                    writer.WriteBase64String("embedding", bytes);
                }
                else
                {
                    writer.WriteStartArray("embedding");
                    foreach (var value in vector)
                    {
                        writer.WriteNumberValue(value);
                    }

                    writer.WriteEndArray();
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteString("model", model);
            writer.WriteStartObject("usage");
            writer.WriteNumber("prompt_tokens", tokens);
            writer.WriteNumber("total_tokens", tokens);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return UpstreamReply.Answer(buffer.WrittenSpan.ToArray(), new TokenUsage(tokens, 0));
    }

    /// <summary>A hashed bag of lower-cased words, L2-normalised.</summary>
    internal static float[] Embed(string text, int dimensions)
    {
        var vector = new float[dimensions];
        foreach (var word in text.ToLowerInvariant().Split((char[])[' ', '\t', '\n', '\r', '.', ',', ';', ':', '!', '?', '"', '\'', '(', ')'], StringSplitOptions.RemoveEmptyEntries))
        {
            var hash = XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(word));
            vector[(int)(hash % (ulong)dimensions)] += (hash & (1UL << 63)) == 0 ? 1f : -1f;
        }

        var norm = MathF.Sqrt(vector.Sum(v => v * v));
        if (norm > 0)
        {
            for (var i = 0; i < vector.Length; i++)
            {
                vector[i] /= norm;
            }
        }

        return vector;
    }

    private sealed class SimulatedStream(List<byte[]> chunks, TokenUsage usage, int delayMs, TimeProvider time) : IChunkStream
    {
        private int _next;

        public ReadOnlyMemory<byte> Current { get; private set; }

        public TokenUsage Usage => _next >= chunks.Count ? usage : default;

        public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
        {
            if (_next >= chunks.Count)
            {
                return false;
            }

            if (delayMs > 0 && _next > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(delayMs), time, cancellationToken);
            }

            Current = chunks[_next++];
            return true;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
