using System.Buffers;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;
using static Flotilla.Gateway.Protocol.RequestFields;

namespace Flotilla.Gateway.Endpoints.Responses;

/// <summary>What a Responses request asks for, beyond its Chat Completions form.</summary>
/// <param name="TurnMessages">This turn's input items as a JSON array of Chat Completions messages (without the instructions), kept for a later <c>previous_response_id</c>.</param>
internal sealed record ResponsesTurn(
    ChatRequest Request, string? PreviousResponseId, bool Store, string? Instructions, string? Model, byte[] TurnMessages, string ToolsJson, bool ParallelToolCalls);

/// <summary>
/// Reads an OpenAI Responses request (<see href="https://platform.openai.com/docs/api-reference/responses/create"/>) into its
/// Chat Completions form: <c>instructions</c> become the system message, the stored turns of <c>previous_response_id</c>
/// come next, then this request's <c>input</c> items (messages, <c>function_call</c>, <c>function_call_output</c>).
/// Throws <see cref="GatewayException"/> (400, naming the field) on a malformed request.
/// </summary>
internal static class ResponsesRequestTranslator
{
    public static JsonDocument Parse(byte[] body)
    {
        if (JsonText.FindEncodingError(body) is { } encodingError)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson, encodingError);
        }

        try
        {
            var document = JsonDocument.Parse(body, JsonText.DocumentOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                throw BadRequest("The request body must be a JSON object.", null);
            }

            return document;
        }
        catch (JsonException e)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson,
                $"The request body is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}). Send one JSON object.");
        }
    }

    public static string? PreviousResponseId(JsonElement root) =>
        root.TryGetProperty("previous_response_id", out var previous) && previous.ValueKind != JsonValueKind.Null
            ? previous.ValueKind == JsonValueKind.String ? previous.GetString() : throw BadRequest("'previous_response_id' must be a string.", "previous_response_id")
            : null;

    /// <param name="history">The stored turns of the conversation this request continues (JSON arrays of messages), oldest first.</param>
    public static ResponsesTurn Read(JsonElement root, IReadOnlyList<string> history)
    {
        var turn = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(turn, AnthropicTranslator.WriterOptions))
        {
            writer.WriteStartArray();
            WriteInput(root, writer);
            writer.WriteEndArray();
        }

        var turnMessages = turn.WrittenSpan.ToArray();
        string? instructions = null;
        if (root.TryGetProperty("instructions", out var instructionsElement) && instructionsElement.ValueKind != JsonValueKind.Null)
        {
            instructions = instructionsElement.ValueKind == JsonValueKind.String
                ? instructionsElement.GetString()
                : throw BadRequest("'instructions' must be a string.", "instructions");
        }

        string? model = null;
        var buffer = new ArrayBufferWriter<byte>(turnMessages.Length + history.Sum(h => h.Length) + 512);
        using (var writer = new Utf8JsonWriter(buffer, AnthropicTranslator.WriterOptions))
        {
            writer.WriteStartObject();
            if (root.TryGetProperty("model", out var modelElement) && modelElement.ValueKind != JsonValueKind.Null)
            {
                model = modelElement.ValueKind == JsonValueKind.String ? modelElement.GetString() : throw BadRequest("'model' must be a string.", "model");
                writer.WriteString("model"u8, model);
            }

            writer.WriteStartArray("messages"u8);
            if (!string.IsNullOrEmpty(instructions))
            {
                writer.WriteStartObject();
                writer.WriteString("role"u8, "system"u8);
                writer.WriteString("content"u8, instructions);
                writer.WriteEndObject();
            }

            foreach (var stored in history)
            {
                WriteItemsOf(Encoding.UTF8.GetBytes(stored), writer);
            }

            WriteItemsOf(turnMessages, writer);
            writer.WriteEndArray();
            WriteOptions(root, writer);
            writer.WriteEndObject();
        }

        var store = !(root.TryGetProperty("store", out var storeElement) && storeElement.ValueKind == JsonValueKind.False);
        var parallel = !(root.TryGetProperty("parallel_tool_calls", out var p) && p.ValueKind == JsonValueKind.False);
        var tools = root.TryGetProperty("tools", out var toolsElement) && toolsElement.ValueKind == JsonValueKind.Array ? toolsElement.GetRawText() : "[]";
        ChatRequest request;
        try
        {
            request = ChatRequest.Translated(buffer.WrittenSpan.ToArray(), IngressFormat.Responses, null);
        }
        catch (GatewayException e) when (e.Param == "messages")
        {
            throw BadRequest("'input' is required: send text or an array of input items (or continue with 'previous_response_id').", "input");
        }

        return new ResponsesTurn(request, PreviousResponseId(root), store, instructions, model, turnMessages, tools, parallel);
    }

    private static void WriteItemsOf(ReadOnlySpan<byte> messagesArray, Utf8JsonWriter writer)
    {
        var reader = new Utf8JsonReader(messagesArray);
        using var document = JsonDocument.ParseValue(ref reader);
        foreach (var message in document.RootElement.EnumerateArray())
        {
            message.WriteTo(writer);
        }
    }

    /// <summary>This turn's input as Chat Completions messages; consecutive function calls (and the text before them) make one assistant message.</summary>
    private static void WriteInput(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("input", out var input) || input.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (input.ValueKind == JsonValueKind.String)
        {
            writer.WriteStartObject();
            writer.WriteString("role"u8, "user"u8);
            writer.WriteString("content"u8, input.GetString());
            writer.WriteEndObject();
            return;
        }

        if (input.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest("'input' must be a string or an array of input items.", "input");
        }

        var pendingText = (string?)null;
        var pendingCalls = new List<JsonElement>();
        void FlushAssistant()
        {
            if (pendingText is null && pendingCalls.Count == 0)
            {
                return;
            }

            writer.WriteStartObject();
            writer.WriteString("role"u8, "assistant"u8);
            if (pendingText is null)
            {
                writer.WriteNull("content"u8);
            }
            else
            {
                writer.WriteString("content"u8, pendingText);
            }

            if (pendingCalls.Count > 0)
            {
                writer.WriteStartArray("tool_calls"u8);
                foreach (var call in pendingCalls)
                {
                    writer.WriteStartObject();
                    writer.WriteString("id"u8, call.GetProperty("call_id").GetString());
                    writer.WriteString("type"u8, "function"u8);
                    writer.WriteStartObject("function"u8);
                    writer.WriteString("name"u8, call.GetProperty("name").GetString());
                    writer.WriteString("arguments"u8, call.GetProperty("arguments").GetString());
                    writer.WriteEndObject();
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
            pendingText = null;
            pendingCalls.Clear();
        }

        var i = 0;
        foreach (var item in input.EnumerateArray())
        {
            var param = $"input[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"{param} must be an input item object.", param);
            }

            var type = item.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : item.TryGetProperty("role", out _) ? "message" : null;
            switch (type)
            {
                case "message":
                    var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
                    if (role is not ("user" or "assistant" or "system" or "developer"))
                    {
                        throw BadRequest($"{param}.role must be user, assistant, system or developer.", $"{param}.role");
                    }

                    if (role == "assistant")
                    {
                        if (pendingCalls.Count > 0)
                        {
                            FlushAssistant();
                        }

                        pendingText = (pendingText ?? "") + ReadText(item, param);
                        continue;
                    }

                    FlushAssistant();
                    WriteMessage(item, role, param, writer);
                    break;
                case "function_call":
                    String(item, "call_id", param);
                    String(item, "name", param);
                    String(item, "arguments", param);
                    pendingCalls.Add(item);
                    break;
                case "function_call_output":
                    FlushAssistant();
                    writer.WriteStartObject();
                    writer.WriteString("role"u8, "tool"u8);
                    writer.WriteString("tool_call_id"u8, String(item, "call_id", param));
                    writer.WriteString("content"u8, item.TryGetProperty("output", out var output) ? OutputText(output, param) : "");
                    writer.WriteEndObject();
                    break;
                case "reasoning":
                    // Reasoning items carry a provider's encrypted state; a Chat Completions model has no use for them.
                    break;
                default:
                    throw BadRequest($"{param} has type '{Flotilla.Fleet.DisplayText.Safe(type ?? "(none)", 64)}'; Flotilla accepts message, function_call, function_call_output and reasoning items.", $"{param}.type");
            }
        }

        FlushAssistant();
    }

    private static void WriteMessage(JsonElement item, string role, string param, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("role"u8, role);
        if (!item.TryGetProperty("content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            throw BadRequest($"{param}.content must be a string or an array of content parts.", $"{param}.content");
        }

        if (content.ValueKind == JsonValueKind.String || role != "user")
        {
            writer.WriteString("content"u8, ReadText(item, param));
            writer.WriteEndObject();
            return;
        }

        writer.WriteStartArray("content"u8);
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partParam = $"{param}.content[{j++}]";
            switch (Type(part, partParam))
            {
                case "input_text" or "output_text" or "text":
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "text"u8);
                    writer.WriteString("text"u8, String(part, "text", partParam));
                    writer.WriteEndObject();
                    break;
                case "input_image":
                    writer.WriteStartObject();
                    writer.WriteString("type"u8, "image_url"u8);
                    writer.WriteStartObject("image_url"u8);
                    writer.WriteString("url"u8, String(part, "image_url", partParam));
                    if (part.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.String)
                    {
                        writer.WriteString("detail"u8, detail.GetString());
                    }

                    writer.WriteEndObject();
                    writer.WriteEndObject();
                    break;
                case var other:
                    throw BadRequest($"{partParam} has type '{Flotilla.Fleet.DisplayText.Safe(other, 64)}'; Flotilla accepts input_text and input_image (by image_url) parts.", $"{partParam}.type");
            }
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <summary>The text of a message whose content may only be text (system, developer, assistant): a string or text parts, joined.</summary>
    private static string ReadText(JsonElement item, string param)
    {
        if (!item.TryGetProperty("content", out var content))
        {
            throw BadRequest($"{param}.content is required.", $"{param}.content");
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest($"{param}.content must be a string or an array of content parts.", $"{param}.content");
        }

        var text = new StringBuilder();
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partParam = $"{param}.content[{j++}]";
            var type = Type(part, partParam);
            if (type is not ("input_text" or "output_text" or "text" or "refusal"))
            {
                throw BadRequest($"{partParam} has type '{Flotilla.Fleet.DisplayText.Safe(type, 64)}'; this role's content is text only.", $"{partParam}.type");
            }

            text.Append(String(part, type == "refusal" ? "refusal" : "text", partParam));
        }

        return text.ToString();
    }

    private static string OutputText(JsonElement output, string param)
    {
        if (output.ValueKind == JsonValueKind.String)
        {
            return output.GetString()!;
        }

        if (output.ValueKind == JsonValueKind.Array)
        {
            var text = new StringBuilder();
            var j = 0;
            foreach (var part in output.EnumerateArray())
            {
                var partParam = $"{param}.output[{j++}]";
                if (Type(part, partParam) is "input_text" or "output_text" or "text")
                {
                    text.Append(String(part, "text", partParam));
                }
                else
                {
                    throw BadRequest($"{partParam}: a function_call_output here holds text only.", $"{partParam}.type");
                }
            }

            return text.ToString();
        }

        throw BadRequest($"{param}.output must be a string or an array of text parts.", $"{param}.output");
    }

    private static void WriteOptions(JsonElement root, Utf8JsonWriter writer)
    {
        if (root.TryGetProperty("max_output_tokens", out var max) && max.ValueKind != JsonValueKind.Null)
        {
            if (max.ValueKind != JsonValueKind.Number || !max.TryGetInt64(out var tokens) || tokens < 1)
            {
                throw BadRequest("'max_output_tokens' must be a positive integer.", "max_output_tokens");
            }

            writer.WriteNumber("max_tokens"u8, tokens);
        }

        CopyNumber(root, "temperature", writer);
        CopyNumber(root, "top_p", writer);

        if (root.TryGetProperty("user", out var user) && user.ValueKind == JsonValueKind.String)
        {
            writer.WriteString("user"u8, user.GetString());
        }

        if (root.TryGetProperty("parallel_tool_calls", out var parallel) && parallel.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            writer.WriteBoolean("parallel_tool_calls"u8, parallel.GetBoolean());
        }

        if (root.TryGetProperty("reasoning", out var reasoning) && reasoning.ValueKind == JsonValueKind.Object
            && reasoning.TryGetProperty("effort", out var effort) && effort.ValueKind == JsonValueKind.String)
        {
            writer.WriteString("reasoning_effort"u8, effort.GetString());
        }

        WriteTools(root, writer);
        WriteTextFormat(root, writer);
        if (root.TryGetProperty("stream", out var stream) && stream.ValueKind != JsonValueKind.Null)
        {
            if (stream.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw BadRequest("'stream' must be true or false.", "stream");
            }

            if (stream.ValueKind == JsonValueKind.True)
            {
                writer.WriteBoolean("stream"u8, true);
                writer.WriteStartObject("stream_options"u8);
                writer.WriteBoolean("include_usage"u8, true);
                writer.WriteEndObject();
            }
        }
    }

    private static void WriteTools(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest("'tools' must be an array of tools.", "tools");
        }

        if (tools.GetArrayLength() == 0)
        {
            return;
        }

        writer.WriteStartArray("tools"u8);
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var param = $"tools[{i++}]";
            var type = Type(tool, param);
            if (type != "function")
            {
                throw BadRequest($"{param} has type '{Flotilla.Fleet.DisplayText.Safe(type, 64)}'; Flotilla relays function tools only (hosted tools such as web_search run at OpenAI).", $"{param}.type");
            }

            writer.WriteStartObject();
            writer.WriteString("type"u8, "function"u8);
            writer.WriteStartObject("function"u8);
            writer.WriteString("name"u8, String(tool, "name", param));
            foreach (var name in (ReadOnlySpan<string>)["description", "parameters", "strict"])
            {
                if (tool.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
                {
                    writer.WritePropertyName(name);
                    value.WriteTo(writer);
                }
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        if (root.TryGetProperty("tool_choice", out var choice) && choice.ValueKind != JsonValueKind.Null)
        {
            if (choice.ValueKind == JsonValueKind.String && choice.GetString() is "auto" or "required" or "none")
            {
                writer.WriteString("tool_choice"u8, choice.GetString());
            }
            else if (choice.ValueKind == JsonValueKind.Object && Type(choice, "tool_choice") == "function")
            {
                writer.WriteStartObject("tool_choice"u8);
                writer.WriteString("type"u8, "function"u8);
                writer.WriteStartObject("function"u8);
                writer.WriteString("name"u8, String(choice, "name", "tool_choice"));
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            else
            {
                throw BadRequest("'tool_choice' must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"name\":...}.", "tool_choice");
            }
        }
    }

    private static void WriteTextFormat(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.Object
            || !text.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        switch (Type(format, "text.format"))
        {
            case "text":
                break;
            case "json_object":
                writer.WriteStartObject("response_format"u8);
                writer.WriteString("type"u8, "json_object"u8);
                writer.WriteEndObject();
                break;
            case "json_schema":
                writer.WriteStartObject("response_format"u8);
                writer.WriteString("type"u8, "json_schema"u8);
                writer.WriteStartObject("json_schema"u8);
                writer.WriteString("name"u8, String(format, "name", "text.format"));
                foreach (var name in (ReadOnlySpan<string>)["description", "schema", "strict"])
                {
                    if (format.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
                    {
                        writer.WritePropertyName(name);
                        value.WriteTo(writer);
                    }
                }

                writer.WriteEndObject();
                writer.WriteEndObject();
                break;
            default:
                throw BadRequest("'text.format.type' must be text, json_object or json_schema.", "text.format.type");
        }
    }
}
