using System.Buffers;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Providers.Anthropic;

/// <summary>
/// Translates an Anthropic Messages event stream (<see href="https://docs.anthropic.com/en/api/messages-streaming"/>), one event
/// at a time, into OpenAI <c>chat.completion.chunk</c> payloads: the JSON after <c>data: </c>. The caller writes the SSE framing
/// and the final <c>[DONE]</c>. Not thread-safe: one instance per stream.
/// </summary>
/// With <c>keepThinking</c>, thinking comes through as <c>thinking_blocks</c> pieces in the chunks' deltas (for a caller that
/// spoke Messages and gets them back).
internal sealed class AnthropicStreamTranslator(string completionId, string model, long createdUnixSeconds, bool includeUsage, bool keepThinking = false)
{
    private readonly JsonEncodedText _id = JsonEncodedText.Encode(completionId, AnthropicTranslator.WriterOptions.Encoder);
    private readonly JsonEncodedText _model = JsonEncodedText.Encode(model, AnthropicTranslator.WriterOptions.Encoder);
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _writer = new(Stream.Null, AnthropicTranslator.WriterOptions);

    // Anthropic numbers every content block; OpenAI numbers only tool calls. Maps a tool_use block's index to its tool call index.
    private readonly Dictionary<int, int> _toolCallByBlock = [];
    private byte[] _unescaped = new byte[256];
    private AnthropicUsage _usage;
    private bool _started;

    /// <summary>Input tokens (cache reads and writes included) from <c>message_start</c>; output tokens from <c>message_delta</c>.</summary>
    public TokenUsage Usage => _usage.ToTokenUsage();

    /// <summary>True once <c>message_stop</c> arrived: the answer is whole.</summary>
    public bool Completed { get; private set; }

    /// <summary>The message of an <c>error</c> event, if the upstream sent one; the stream cannot go on after it.</summary>
    public string? Error { get; private set; }

    /// <summary>The OpenAI finish reason, once <c>message_delta</c> gave the stop reason.</summary>
    public string? FinishReason { get; private set; }

    /// <summary>
    /// Translates one event and appends the chunk payloads it yields (none, one or two) to <paramref name="output"/>.
    /// <paramref name="eventName"/> is the SSE <c>event:</c> field; without it the <c>type</c> of <paramref name="data"/> names the event.
    /// Throws <see cref="JsonException"/> when <paramref name="data"/> is not JSON. Unknown events are ignored, as Anthropic asks.
    /// </summary>
    public void OnEvent(string? eventName, ReadOnlySpan<byte> data, List<byte[]> output)
    {
        switch (eventName ?? ReadType(data))
        {
            case "content_block_delta":
                // By far the most frequent event, so it is read without building a document.
                OnContentBlockDelta(data, output);
                break;
            case "message_start":
                OnMessageStart(data, output);
                break;
            case "content_block_start":
                OnContentBlockStart(data, output);
                break;
            case "message_delta":
                OnMessageDelta(data, output);
                break;
            case "message_stop" when !Completed:
                Completed = true;
                if (includeUsage)
                {
                    WriteUsageChunk(output);
                }

                break;
            case "error":
                Error = ReadError(data);
                break;

            // ping, content_block_stop and event types added after this was written carry nothing to translate.
        }
    }

    private void OnMessageStart(ReadOnlySpan<byte> data, List<byte[]> output)
    {
        using var document = Parse(data);
        if (document.RootElement.TryGetProperty("message"u8, out var message) && message.ValueKind == JsonValueKind.Object
            && message.TryGetProperty("usage"u8, out var usage))
        {
            _usage.Update(usage);
        }

        EnsureStarted(output);
    }

    private void OnContentBlockStart(ReadOnlySpan<byte> data, List<byte[]> output)
    {
        using var document = Parse(data);
        var root = document.RootElement;
        if (!root.TryGetProperty("content_block"u8, out var block) || block.ValueKind != JsonValueKind.Object
            || !block.TryGetProperty("type"u8, out var type))
        {
            return;
        }

        if (type.ValueEquals("text"u8))
        {
            // The start of a text block is normally empty; its text comes in deltas.
            if (block.TryGetProperty("text"u8, out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } initial)
            {
                EnsureStarted(output);
                BeginChunk().WriteString("content"u8, initial);
                EndChunk(null, output);
            }

            return;
        }

        if (keepThinking && type.ValueEquals("redacted_thinking"u8))
        {
            EnsureStarted(output);
            var thinking = BeginChunk();
            thinking.WriteStartArray("thinking_blocks"u8);
            block.WriteTo(thinking);
            thinking.WriteEndArray();
            EndChunk(null, output);
            return;
        }

        // server_tool_use and other block types run on Anthropic's side and are not the caller's function calls.
        if (!type.ValueEquals("tool_use"u8))
        {
            return;
        }

        var toolCall = _toolCallByBlock.Count;
        _toolCallByBlock[root.GetProperty("index"u8).GetInt32()] = toolCall;
        EnsureStarted(output);
        var writer = BeginChunk();
        writer.WriteStartArray("tool_calls"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, toolCall);
        writer.WriteString("id"u8, block.GetProperty("id"u8).GetString());
        writer.WriteString("type"u8, "function"u8);
        writer.WriteStartObject("function"u8);
        writer.WriteString("name"u8, block.GetProperty("name"u8).GetString());
        writer.WriteString("arguments"u8, ""u8);
        writer.WriteEndObject();
        writer.WriteEndObject();
        writer.WriteEndArray();
        EndChunk(null, output);
    }

    private void OnContentBlockDelta(ReadOnlySpan<byte> data, List<byte[]> output)
    {
        var reader = new Utf8JsonReader(data);
        Expect(ref reader, JsonTokenType.StartObject);
        var index = -1;
        var isText = false;
        var isJson = false;
        var isThinking = false;
        var isSignature = false;
        var value = ReadOnlySpan<byte>.Empty;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("index"u8))
            {
                reader.Read();
                index = reader.GetInt32();
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("type"u8))
                    {
                        reader.Read();
                        isText = reader.ValueTextEquals("text_delta"u8);
                        isJson = reader.ValueTextEquals("input_json_delta"u8);
                        isThinking = reader.ValueTextEquals("thinking_delta"u8);
                        isSignature = reader.ValueTextEquals("signature_delta"u8);
                    }
                    else if (reader.ValueTextEquals("text"u8) || reader.ValueTextEquals("partial_json"u8)
                        || (keepThinking && (reader.ValueTextEquals("thinking"u8) || reader.ValueTextEquals("signature"u8))))
                    {
                        reader.Read();
                        value = Unescape(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }

        // Anthropic opens every tool input with an empty partial_json; an empty piece adds nothing for the caller.
        if (value.IsEmpty)
        {
            return;
        }

        if (isText)
        {
            EnsureStarted(output);
            BeginChunk().WriteString("content"u8, value);
            EndChunk(null, output);
        }
        else if (isJson && _toolCallByBlock.TryGetValue(index, out var toolCall))
        {
            EnsureStarted(output);
            var writer = BeginChunk();
            writer.WriteStartArray("tool_calls"u8);
            writer.WriteStartObject();
            writer.WriteNumber("index"u8, toolCall);
            writer.WriteStartObject("function"u8);
            writer.WriteString("arguments"u8, value);
            writer.WriteEndObject();
            writer.WriteEndObject();
            writer.WriteEndArray();
            EndChunk(null, output);
        }

        else if (keepThinking && (isThinking || isSignature))
        {
            EnsureStarted(output);
            var writer = BeginChunk();
            writer.WriteStartArray("thinking_blocks"u8);
            writer.WriteStartObject();
            writer.WriteString("type"u8, "thinking"u8);
            writer.WriteString(isThinking ? "thinking"u8 : "signature"u8, value);
            writer.WriteEndObject();
            writer.WriteEndArray();
            EndChunk(null, output);
        }

        // Otherwise thinking_delta, signature_delta and citations_delta have no counterpart in a chat.completion.chunk.
    }

    private void OnMessageDelta(ReadOnlySpan<byte> data, List<byte[]> output)
    {
        using var document = Parse(data);
        var root = document.RootElement;
        string? stopReason = null;
        if (root.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object
            && delta.TryGetProperty("stop_reason"u8, out var stop) && stop.ValueKind == JsonValueKind.String)
        {
            stopReason = stop.GetString();
        }

        // Counts here are running totals, so they replace those of message_start rather than add to them.
        if (root.TryGetProperty("usage"u8, out var usage))
        {
            _usage.Update(usage);
        }

        FinishReason = AnthropicTranslator.MapStopReason(stopReason);
        EnsureStarted(output);
        BeginChunk();
        EndChunk(FinishReason, output);
    }

    private void EnsureStarted(List<byte[]> output)
    {
        if (_started)
        {
            return;
        }

        // OpenAI streams open with the role; clients such as the OpenAI SDKs read it from the first chunk.
        _started = true;
        var writer = BeginChunk();
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("content"u8, ""u8);
        EndChunk(null, output);
    }

    /// <summary>Starts a chunk and leaves the writer inside <c>delta</c>; <see cref="EndChunk"/> closes it.</summary>
    private Utf8JsonWriter BeginChunk()
    {
        var writer = StartPayload();
        writer.WriteStartArray("choices"u8);
        writer.WriteStartObject();
        writer.WriteNumber("index"u8, 0);
        writer.WriteStartObject("delta"u8);
        return writer;
    }

    private void EndChunk(string? finishReason, List<byte[]> output)
    {
        var writer = _writer;
        writer.WriteEndObject();
        if (finishReason is null)
        {
            writer.WriteNull("finish_reason"u8);
        }
        else
        {
            writer.WriteString("finish_reason"u8, finishReason);
        }

        writer.WriteEndObject();
        writer.WriteEndArray();

        // With include_usage, OpenAI sends "usage": null on every chunk but the last.
        if (includeUsage)
        {
            writer.WriteNull("usage"u8);
        }

        FinishPayload(output);
    }

    private void WriteUsageChunk(List<byte[]> output)
    {
        var writer = StartPayload();
        writer.WriteStartArray("choices"u8);
        writer.WriteEndArray();
        _usage.WriteOpenAiUsage(writer);
        FinishPayload(output);
    }

    private Utf8JsonWriter StartPayload()
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        _writer.WriteStartObject();
        _writer.WriteString("id"u8, _id);
        _writer.WriteString("object"u8, "chat.completion.chunk"u8);
        _writer.WriteNumber("created"u8, createdUnixSeconds);
        _writer.WriteString("model"u8, _model);
        return _writer;
    }

    private void FinishPayload(List<byte[]> output)
    {
        _writer.WriteEndObject();
        _writer.Flush();
        output.Add(_buffer.WrittenSpan.ToArray());
    }

    /// <summary>The current string token as UTF-8 without JSON escapes, in a buffer reused until the next call.</summary>
    private ReadOnlySpan<byte> Unescape(scoped ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"Expected a string in a content_block_delta, found {reader.TokenType}.");
        }

        if (!reader.ValueIsEscaped)
        {
            return reader.ValueSpan;
        }

        // Unescaping never lengthens a string.
        if (_unescaped.Length < reader.ValueSpan.Length)
        {
            _unescaped = new byte[Math.Max(reader.ValueSpan.Length, _unescaped.Length * 2)];
        }

        var length = reader.CopyString(_unescaped);
        return _unescaped.AsSpan(0, length);
    }

    private static readonly string[] EventNames =
        ["content_block_delta", "message_start", "content_block_start", "message_delta", "message_stop", "error"];

    private static string? ReadType(ReadOnlySpan<byte> data)
    {
        var reader = new Utf8JsonReader(data);
        Expect(ref reader, JsonTokenType.StartObject);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    return null;
                }

                // Matched against the known names so the hot path does not allocate a string per event.
                foreach (var name in EventNames)
                {
                    if (reader.ValueTextEquals(name))
                    {
                        return name;
                    }
                }

                return null;
            }

            reader.Skip();
        }

        return null;
    }

    private static string ReadError(ReadOnlySpan<byte> data)
    {
        if (AnthropicTranslator.ReadErrorMessage(data) is { } message)
        {
            return message;
        }

        // An error event we cannot read is still an error: keep its text so the log says what came back.
        return data.IsEmpty ? "unknown error" : Encoding.UTF8.GetString(data);
    }

    private static JsonDocument Parse(ReadOnlySpan<byte> data)
    {
        var reader = new Utf8JsonReader(data);
        var document = JsonDocument.ParseValue(ref reader);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new JsonException("An Anthropic stream event is not a JSON object.");
        }

        return document;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (!reader.Read() || reader.TokenType != type)
        {
            throw new JsonException($"An Anthropic stream event is not a JSON object (found {reader.TokenType}).");
        }
    }
}
