using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;

namespace Flotilla.Gateway.Endpoints.Messages;

/// <summary>
/// Writes a streamed answer, given as <c>chat.completion.chunk</c> payloads, as Anthropic Messages events
/// (<see href="https://docs.anthropic.com/en/api/messages-streaming"/>): <c>message_start</c>, one
/// <c>content_block_start</c> / <c>_delta</c>… / <c>_stop</c> run per text, tool_use or thinking block, then
/// <c>message_delta</c> (stop reason, usage) and <c>message_stop</c>. The inverse of <see cref="AnthropicStreamTranslator"/>.
/// Not thread-safe: one instance per stream.
/// </summary>
internal sealed class MessagesStreamWriter(string messageId, long estimatedInputTokens) : IStreamTranslation
{
    private PipeWriter _output = null!;
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _json = new(Stream.Null, AnthropicTranslator.WriterOptions);
    private string? _model;
    private bool _started;
    private int _blocks;
    private BlockKind _open;
    private int _openToolCall = -1;
    private string? _finishReason;
    private MessagesUsage? _usage;

    private enum BlockKind { None, Text, ToolUse, Thinking }

    /// <summary>Anthropic streams open with <c>message_start</c>, written with the first chunk (it names the model).</summary>
    public void Start(PipeWriter output) => _output = output;

    public ValueTask FinishAsync(TokenUsage usage)
    {
        Finish(usage);
        return ValueTask.CompletedTask;
    }

    public void Fail(GatewayException error) => Error(error.Status, error.Message);

    /// <summary>Translates one chunk; writes nothing for chunks that carry nothing Anthropic shows (the role, an empty text).</summary>
    public void Add(ReadOnlySpan<byte> chunk)
    {
        var reader = new Utf8JsonReader(chunk);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        _model ??= root.TryGetProperty("model"u8, out var model) && model.ValueKind == JsonValueKind.String ? model.GetString() : null;
        if (root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            _usage = MessagesUsage.FromChat(usage);
        }

        EnsureStarted();
        if (!root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
        {
            return;
        }

        var choice = choices[0];
        if (choice.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object)
        {
            if (delta.TryGetProperty("thinking_blocks"u8, out var thinking) && thinking.ValueKind == JsonValueKind.Array)
            {
                foreach (var piece in thinking.EnumerateArray())
                {
                    OnThinking(piece);
                }
            }

            if (delta.TryGetProperty("content"u8, out var content) && content.ValueKind == JsonValueKind.String && content.GetString() is { Length: > 0 } text)
            {
                OnText(text);
            }

            if (delta.TryGetProperty("tool_calls"u8, out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    OnToolCall(call);
                }
            }
        }

        if (choice.TryGetProperty("finish_reason"u8, out var finish) && finish.ValueKind == JsonValueKind.String)
        {
            _finishReason = finish.GetString();
            CloseBlock();
        }
    }

    /// <summary>Ends the message: closes any open block, then <c>message_delta</c> with the stop reason and usage, and <c>message_stop</c>.</summary>
    public void Finish(TokenUsage usage)
    {
        EnsureStarted();
        CloseBlock();
        var writer = Begin();
        writer.WriteString("type"u8, "message_delta"u8);
        writer.WriteStartObject("delta"u8);
        writer.WriteString("stop_reason"u8, MessagesAnswerTranslator.StopReason(_finishReason));
        writer.WriteNull("stop_sequence"u8);
        writer.WriteEndObject();
        (_usage ?? MessagesUsage.FromTokens(usage)).WriteTo(writer, "usage"u8);
        End("message_delta"u8);
        writer = Begin();
        writer.WriteString("type"u8, "message_stop"u8);
        End("message_stop"u8);
    }

    /// <summary>An <c>error</c> event: how Anthropic ends a stream that failed after it started.</summary>
    public void Error(int status, string message)
    {
        var body = MessagesAnswerTranslator.Error(status, message);
        Write("error"u8, body);
    }

    private void EnsureStarted()
    {
        if (_started)
        {
            return;
        }

        _started = true;
        var writer = Begin();
        writer.WriteString("type"u8, "message_start"u8);
        writer.WriteStartObject("message"u8);
        writer.WriteString("id"u8, messageId);
        writer.WriteString("type"u8, "message"u8);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteString("model"u8, _model ?? "");
        writer.WriteStartArray("content"u8);
        writer.WriteEndArray();
        writer.WriteNull("stop_reason"u8);
        writer.WriteNull("stop_sequence"u8);

        // The real counts come in message_delta; until then, the gateway's estimate of the prompt.
        new MessagesUsage(estimatedInputTokens, 0, 0, 0).WriteTo(writer, "usage"u8);
        writer.WriteEndObject();
        End("message_start"u8);
    }

    private void OnText(string text)
    {
        if (_open != BlockKind.Text)
        {
            CloseBlock();
            var start = Begin();
            StartBlock(start);
            start.WriteString("type"u8, "text"u8);
            start.WriteString("text"u8, ""u8);
            EndBlockStart(BlockKind.Text);
        }

        var writer = BeginDelta();
        writer.WriteString("type"u8, "text_delta"u8);
        writer.WriteString("text"u8, text);
        EndDelta();
    }

    private void OnToolCall(JsonElement call)
    {
        var index = call.TryGetProperty("index"u8, out var i) && i.TryGetInt32(out var n) ? n : 0;
        var function = call.TryGetProperty("function"u8, out var f) && f.ValueKind == JsonValueKind.Object ? f : default;
        if (_open != BlockKind.ToolUse || _openToolCall != index)
        {
            CloseBlock();
            var start = Begin();
            StartBlock(start);
            start.WriteString("type"u8, "tool_use"u8);
            start.WriteString("id"u8, call.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : $"toolu_{messageId}_{index}");
            start.WriteString("name"u8, function.ValueKind == JsonValueKind.Object && function.TryGetProperty("name"u8, out var name) ? name.GetString() : "");
            start.WriteStartObject("input"u8);
            start.WriteEndObject();
            EndBlockStart(BlockKind.ToolUse);
            _openToolCall = index;
        }

        if (function.ValueKind == JsonValueKind.Object && function.TryGetProperty("arguments"u8, out var arguments)
            && arguments.ValueKind == JsonValueKind.String && arguments.GetString() is { Length: > 0 } piece)
        {
            var writer = BeginDelta();
            writer.WriteString("type"u8, "input_json_delta"u8);
            writer.WriteString("partial_json"u8, piece);
            EndDelta();
        }
    }

    /// <summary>Pieces of thinking from an Anthropic target (<c>thinking_blocks</c> in a chunk's delta): text, then its signature.</summary>
    private void OnThinking(JsonElement piece)
    {
        var type = piece.TryGetProperty("type"u8, out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type == "redacted_thinking")
        {
            CloseBlock();
            var start = Begin();
            StartBlock(start);
            foreach (var property in piece.EnumerateObject())
            {
                property.WriteTo(start);
            }

            EndBlockStart(BlockKind.Thinking);
            CloseBlock();
            return;
        }

        if (type != "thinking")
        {
            return;
        }

        if (_open != BlockKind.Thinking)
        {
            CloseBlock();
            var start = Begin();
            StartBlock(start);
            start.WriteString("type"u8, "thinking"u8);
            start.WriteString("thinking"u8, ""u8);
            EndBlockStart(BlockKind.Thinking);
        }

        if (piece.TryGetProperty("thinking"u8, out var text) && text.ValueKind == JsonValueKind.String && text.GetString() is { Length: > 0 } thinking)
        {
            var writer = BeginDelta();
            writer.WriteString("type"u8, "thinking_delta"u8);
            writer.WriteString("thinking"u8, thinking);
            EndDelta();
        }

        if (piece.TryGetProperty("signature"u8, out var signature) && signature.ValueKind == JsonValueKind.String)
        {
            var writer = BeginDelta();
            writer.WriteString("type"u8, "signature_delta"u8);
            writer.WriteString("signature"u8, signature.GetString());
            EndDelta();

            // A signature seals its block: more thinking after it is a new block.
            CloseBlock();
        }
    }

    private void StartBlock(Utf8JsonWriter writer)
    {
        writer.WriteString("type"u8, "content_block_start"u8);
        writer.WriteNumber("index"u8, _blocks);
        writer.WriteStartObject("content_block"u8);
    }

    private void EndBlockStart(BlockKind kind)
    {
        _json.WriteEndObject();
        End("content_block_start"u8);
        _open = kind;
    }

    private Utf8JsonWriter BeginDelta()
    {
        var writer = Begin();
        writer.WriteString("type"u8, "content_block_delta"u8);
        writer.WriteNumber("index"u8, _blocks);
        writer.WriteStartObject("delta"u8);
        return writer;
    }

    private void EndDelta()
    {
        _json.WriteEndObject();
        End("content_block_delta"u8);
    }

    private void CloseBlock()
    {
        if (_open == BlockKind.None)
        {
            return;
        }

        var writer = Begin();
        writer.WriteString("type"u8, "content_block_stop"u8);
        writer.WriteNumber("index"u8, _blocks);
        End("content_block_stop"u8);
        _blocks++;
        _open = BlockKind.None;
        _openToolCall = -1;
    }

    private Utf8JsonWriter Begin()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        _json.WriteStartObject();
        return _json;
    }

    private void End(ReadOnlySpan<byte> eventName)
    {
        _json.WriteEndObject();
        _json.Flush();
        Write(eventName, _buffer.WrittenSpan);
    }

    private void Write(ReadOnlySpan<byte> eventName, ReadOnlySpan<byte> data)
    {
        var length = 7 + eventName.Length + 7 + data.Length + 2;
        var span = _output.GetSpan(length);
        "event: "u8.CopyTo(span);
        eventName.CopyTo(span[7..]);
        var at = 7 + eventName.Length;
        "\ndata: "u8.CopyTo(span[at..]);
        at += 7;
        data.CopyTo(span[at..]);
        at += data.Length;
        span[at] = (byte)'\n';
        span[at + 1] = (byte)'\n';
        _output.Advance(length);
    }
}
