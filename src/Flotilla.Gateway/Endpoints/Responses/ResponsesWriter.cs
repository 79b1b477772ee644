using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Endpoints.Messages;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;

namespace Flotilla.Gateway.Endpoints.Responses;

/// <summary>
/// Writes what the governed path answered as an OpenAI Responses <c>response</c> object, whole or as its streaming events
/// (<see href="https://platform.openai.com/docs/api-reference/responses-streaming"/>): an assistant <c>message</c> item for
/// the text and a <c>function_call</c> item per tool call. Also gives the answer back as a Chat Completions message, which is
/// what the conversation store keeps. Not thread-safe: one instance per call.
/// </summary>
internal sealed class ResponsesWriter(string responseId, ResponsesTurn turn, long createdAt)
{
    private readonly StringBuilder _text = new();
    private readonly List<FunctionCall> _calls = [];
    private readonly string _messageItemId = "msg_" + Guid.NewGuid().ToString("N");
    private readonly ArrayBufferWriter<byte> _buffer = new(512);
    private readonly Utf8JsonWriter _json = new(Stream.Null, AnthropicTranslator.WriterOptions);
    private string? _model;
    private string? _finishReason;
    private long _inputTokens;
    private long _outputTokens;
    private long _cachedTokens;
    private bool _stored;

    // Streaming state.
    private PipeWriter? _output;
    private int _sequence;
    private int _outputIndex = -1;
    private bool _messageOpen;
    private FunctionCall? _openCall;

    private sealed class FunctionCall(string itemId, string callId, string name)
    {
        public string ItemId { get; } = itemId;
        public string CallId { get; } = callId;
        public string Name { get; } = name;
        public StringBuilder Arguments { get; } = new();
        public int OutputIndex { get; set; }
    }

    /// <summary>Whether the answer was kept for <c>previous_response_id</c> (it says so in the response's <c>store</c>).</summary>
    public bool Stored
    {
        set => _stored = value;
    }

    /// <summary>Reads a whole <c>chat.completion</c>.</summary>
    public void ReadCompletion(ReadOnlySpan<byte> completion)
    {
        var reader = new Utf8JsonReader(completion);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        _model = root.TryGetProperty("model", out var model) ? model.GetString() : null;
        ReadUsage(root);
        var choice = root.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        _finishReason = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
        if (message.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
        {
            _text.Append(content.GetString());
        }

        if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            foreach (var call in calls.EnumerateArray())
            {
                var function = call.GetProperty("function");
                var item = new FunctionCall("fc_" + Guid.NewGuid().ToString("N"), call.GetProperty("id").GetString()!, function.GetProperty("name").GetString()!);
                item.Arguments.Append(function.TryGetProperty("arguments", out var arguments) ? arguments.GetString() : "");
                _calls.Add(item);
            }
        }
    }

    /// <summary>The whole <c>response</c> object.</summary>
    public byte[] Response()
    {
        var writer = Begin();
        WriteResponse(writer, completed: true);
        _json.Flush();
        return _buffer.WrittenSpan.ToArray();
    }

    /// <summary>The answer as a Chat Completions assistant message, for the conversation store.</summary>
    public void WriteAssistantMessage(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("role"u8, "assistant"u8);
        if (_text.Length > 0)
        {
            writer.WriteString("content"u8, _text.ToString());
        }
        else
        {
            writer.WriteNull("content"u8);
        }

        if (_calls.Count > 0)
        {
            writer.WriteStartArray("tool_calls"u8);
            foreach (var call in _calls)
            {
                writer.WriteStartObject();
                writer.WriteString("id"u8, call.CallId);
                writer.WriteString("type"u8, "function"u8);
                writer.WriteStartObject("function"u8);
                writer.WriteString("name"u8, call.Name);
                writer.WriteString("arguments"u8, call.Arguments.ToString());
                writer.WriteEndObject();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    // ---- Streaming ----

    /// <summary>Opens the event stream: <c>response.created</c> and <c>response.in_progress</c>.</summary>
    public void Start(PipeWriter output)
    {
        _output = output;
        foreach (var type in (ReadOnlySpan<string>)["response.created", "response.in_progress"])
        {
            var writer = BeginEvent(type);
            writer.WritePropertyName("response"u8);
            WriteResponse(writer, completed: false);
            EndEvent();
        }
    }

    /// <summary>Translates one <c>chat.completion.chunk</c> into output item events.</summary>
    public void Add(ReadOnlySpan<byte> chunk)
    {
        var reader = new Utf8JsonReader(chunk);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        _model ??= root.TryGetProperty("model"u8, out var model) && model.ValueKind == JsonValueKind.String ? model.GetString() : null;
        ReadUsage(root);
        if (!root.TryGetProperty("choices"u8, out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
        {
            return;
        }

        var choice = choices[0];
        if (choice.TryGetProperty("delta"u8, out var delta) && delta.ValueKind == JsonValueKind.Object)
        {
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
        }
    }

    /// <summary>Closes any open item and ends with <c>response.completed</c> (or <c>response.incomplete</c> when the answer was cut at max tokens).</summary>
    public void Finish(TokenUsage usage)
    {
        CloseItem();
        if (_inputTokens == 0 && _outputTokens == 0)
        {
            (_inputTokens, _outputTokens) = (usage.InputTokens, usage.OutputTokens);
        }

        var writer = BeginEvent(_finishReason == "length" ? "response.incomplete" : "response.completed");
        writer.WritePropertyName("response"u8);
        WriteResponse(writer, completed: true);
        EndEvent();
    }

    /// <summary>An <c>error</c> event: how a Responses stream that failed after it started ends.</summary>
    public void Error(string code, string message)
    {
        var writer = BeginEvent("error");
        writer.WriteString("code"u8, code);
        writer.WriteString("message"u8, message);
        writer.WriteNull("param"u8);
        EndEvent();
    }

    private void OnText(string text)
    {
        if (!_messageOpen)
        {
            CloseItem();
            _messageOpen = true;
            _outputIndex++;
            var added = BeginEvent("response.output_item.added");
            added.WriteNumber("output_index"u8, _outputIndex);
            added.WritePropertyName("item"u8);
            WriteMessageItem(added, "in_progress", "");
            EndEvent();
            var part = BeginEvent("response.content_part.added");
            WriteTextPosition(part);
            part.WritePropertyName("part"u8);
            WriteTextPart(part, "");
            EndEvent();
        }

        _text.Append(text);
        var writer = BeginEvent("response.output_text.delta");
        WriteTextPosition(writer);
        writer.WriteString("delta"u8, text);
        writer.WriteStartArray("logprobs"u8);
        writer.WriteEndArray();
        EndEvent();
    }

    private void OnToolCall(JsonElement call)
    {
        var function = call.TryGetProperty("function"u8, out var f) && f.ValueKind == JsonValueKind.Object ? f : default;
        if (call.TryGetProperty("id"u8, out var id) && id.ValueKind == JsonValueKind.String || _openCall is null)
        {
            CloseItem();
            var name = function.ValueKind == JsonValueKind.Object && function.TryGetProperty("name"u8, out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
            var callId = id.ValueKind == JsonValueKind.String ? id.GetString()! : "call_" + Guid.NewGuid().ToString("N");
            _openCall = new FunctionCall("fc_" + Guid.NewGuid().ToString("N"), callId, name) { OutputIndex = ++_outputIndex };
            _calls.Add(_openCall);
            var added = BeginEvent("response.output_item.added");
            added.WriteNumber("output_index"u8, _outputIndex);
            added.WritePropertyName("item"u8);
            WriteFunctionCallItem(added, _openCall, "in_progress");
            EndEvent();
        }

        if (function.ValueKind == JsonValueKind.Object && function.TryGetProperty("arguments"u8, out var arguments)
            && arguments.ValueKind == JsonValueKind.String && arguments.GetString() is { Length: > 0 } piece)
        {
            _openCall.Arguments.Append(piece);
            var writer = BeginEvent("response.function_call_arguments.delta");
            writer.WriteString("item_id"u8, _openCall.ItemId);
            writer.WriteNumber("output_index"u8, _openCall.OutputIndex);
            writer.WriteString("delta"u8, piece);
            EndEvent();
        }
    }

    private void CloseItem()
    {
        if (_messageOpen)
        {
            _messageOpen = false;
            var text = _text.ToString();
            var done = BeginEvent("response.output_text.done");
            WriteTextPosition(done);
            done.WriteString("text"u8, text);
            done.WriteStartArray("logprobs"u8);
            done.WriteEndArray();
            EndEvent();
            var part = BeginEvent("response.content_part.done");
            WriteTextPosition(part);
            part.WritePropertyName("part"u8);
            WriteTextPart(part, text);
            EndEvent();
            var item = BeginEvent("response.output_item.done");
            item.WriteNumber("output_index"u8, _outputIndex);
            item.WritePropertyName("item"u8);
            WriteMessageItem(item, "completed", text);
            EndEvent();
        }

        if (_openCall is { } call)
        {
            _openCall = null;
            var done = BeginEvent("response.function_call_arguments.done");
            done.WriteString("item_id"u8, call.ItemId);
            done.WriteNumber("output_index"u8, call.OutputIndex);
            done.WriteString("name"u8, call.Name);
            done.WriteString("arguments"u8, call.Arguments.ToString());
            EndEvent();
            var item = BeginEvent("response.output_item.done");
            item.WriteNumber("output_index"u8, call.OutputIndex);
            item.WritePropertyName("item"u8);
            WriteFunctionCallItem(item, call, "completed");
            EndEvent();
        }
    }

    private void WriteTextPosition(Utf8JsonWriter writer)
    {
        writer.WriteString("item_id"u8, _messageItemId);
        writer.WriteNumber("output_index"u8, _outputIndex);
        writer.WriteNumber("content_index"u8, 0);
    }

    // ---- The response object and its items ----

    private void WriteResponse(Utf8JsonWriter writer, bool completed)
    {
        var incomplete = completed && _finishReason == "length";
        writer.WriteStartObject();
        writer.WriteString("id"u8, responseId);
        writer.WriteString("object"u8, "response"u8);
        writer.WriteNumber("created_at"u8, createdAt);
        writer.WriteString("status"u8, !completed ? "in_progress" : incomplete ? "incomplete" : "completed");
        writer.WriteNull("error"u8);
        if (incomplete)
        {
            writer.WriteStartObject("incomplete_details"u8);
            writer.WriteString("reason"u8, "max_output_tokens"u8);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("incomplete_details"u8);
        }

        if (turn.Instructions is null)
        {
            writer.WriteNull("instructions"u8);
        }
        else
        {
            writer.WriteString("instructions"u8, turn.Instructions);
        }

        writer.WriteString("model"u8, _model ?? turn.Model ?? "");
        writer.WriteStartArray("output"u8);
        if (completed)
        {
            if (_text.Length > 0)
            {
                WriteMessageItem(writer, incomplete ? "incomplete" : "completed", _text.ToString());
            }

            foreach (var call in _calls)
            {
                WriteFunctionCallItem(writer, call, "completed");
            }
        }

        writer.WriteEndArray();
        writer.WriteBoolean("parallel_tool_calls"u8, turn.ParallelToolCalls);
        if (turn.PreviousResponseId is null)
        {
            writer.WriteNull("previous_response_id"u8);
        }
        else
        {
            writer.WriteString("previous_response_id"u8, turn.PreviousResponseId);
        }

        writer.WriteBoolean("store"u8, completed ? _stored : turn.Store);
        writer.WritePropertyName("tools"u8);
        writer.WriteRawValue(turn.ToolsJson);
        if (completed)
        {
            writer.WriteStartObject("usage"u8);
            writer.WriteNumber("input_tokens"u8, _inputTokens);
            writer.WriteStartObject("input_tokens_details"u8);
            writer.WriteNumber("cached_tokens"u8, _cachedTokens);
            writer.WriteEndObject();
            writer.WriteNumber("output_tokens"u8, _outputTokens);
            writer.WriteStartObject("output_tokens_details"u8);
            writer.WriteNumber("reasoning_tokens"u8, 0);
            writer.WriteEndObject();
            writer.WriteNumber("total_tokens"u8, _inputTokens + _outputTokens);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNull("usage"u8);
        }

        writer.WriteEndObject();
    }

    private void WriteMessageItem(Utf8JsonWriter writer, string status, string text)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, _messageItemId);
        writer.WriteString("type"u8, "message"u8);
        writer.WriteString("status"u8, status);
        writer.WriteString("role"u8, "assistant"u8);
        writer.WriteStartArray("content"u8);
        if (status != "in_progress")
        {
            WriteTextPart(writer, text);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteTextPart(Utf8JsonWriter writer, string text)
    {
        writer.WriteStartObject();
        writer.WriteString("type"u8, "output_text"u8);
        writer.WriteString("text"u8, text);
        writer.WriteStartArray("annotations"u8);
        writer.WriteEndArray();
        writer.WriteStartArray("logprobs"u8);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteFunctionCallItem(Utf8JsonWriter writer, FunctionCall call, string status)
    {
        writer.WriteStartObject();
        writer.WriteString("id"u8, call.ItemId);
        writer.WriteString("type"u8, "function_call"u8);
        writer.WriteString("status"u8, status);
        writer.WriteString("call_id"u8, call.CallId);
        writer.WriteString("name"u8, call.Name);
        writer.WriteString("arguments"u8, status == "in_progress" ? "" : call.Arguments.ToString());
        writer.WriteEndObject();
    }

    private void ReadUsage(JsonElement root)
    {
        if (root.TryGetProperty("usage"u8, out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            var counts = MessagesUsage.FromChat(usage);
            _inputTokens = counts.Input + counts.CacheRead + counts.CacheCreation;
            _cachedTokens = counts.CacheRead;
            _outputTokens = counts.Output;
        }
    }

    private Utf8JsonWriter Begin()
    {
        _buffer.ResetWrittenCount();
        _json.Reset(_buffer);
        return _json;
    }

    private Utf8JsonWriter BeginEvent(string type)
    {
        var writer = Begin();
        writer.WriteStartObject();
        writer.WriteString("type"u8, type);
        writer.WriteNumber("sequence_number"u8, _sequence++);
        return writer;
    }

    private void EndEvent()
    {
        _json.WriteEndObject();
        _json.Flush();
        var data = _buffer.WrittenSpan;
        var output = _output!;

        // "event: TYPE" as OpenAI sends it; clients key on the data's type.
        var reader = new Utf8JsonReader(data);
        reader.Read();
        reader.Read();
        reader.Read();
        var type = reader.ValueSpan;
        var length = 7 + type.Length + 7 + data.Length + 2;
        var span = output.GetSpan(length);
        "event: "u8.CopyTo(span);
        type.CopyTo(span[7..]);
        var at = 7 + type.Length;
        "\ndata: "u8.CopyTo(span[at..]);
        at += 7;
        data.CopyTo(span[at..]);
        at += data.Length;
        span[at] = (byte)'\n';
        span[at + 1] = (byte)'\n';
        output.Advance(length);
    }
}
