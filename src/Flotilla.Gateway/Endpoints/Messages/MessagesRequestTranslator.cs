using System.Buffers;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;
using static Flotilla.Gateway.Protocol.RequestFields;

namespace Flotilla.Gateway.Endpoints.Messages;

/// <summary>
/// Reads an Anthropic Messages request (<see href="https://docs.anthropic.com/en/api/messages"/>) into its Chat Completions
/// form, which is what the governed path (guardrails, token estimate, cache, routing) works on. The inverse of
/// <see cref="AnthropicTranslator.ToMessagesRequest"/>; an Anthropic target is sent the caller's own body instead, so
/// nothing this form cannot express (thinking blocks, cache_control) is lost on the way there.
/// Throws <see cref="GatewayException"/> (400, naming the offending field) on a malformed request.
/// </summary>
internal static class MessagesRequestTranslator
{
    /// <param name="countOnly">For <c>count_tokens</c>, which takes no <c>max_tokens</c>.</param>
    /// <param name="anthropicBeta">The caller's <c>anthropic-beta</c> header, for an Anthropic target.</param>
    public static ChatRequest Read(byte[] body, bool countOnly = false, string? anthropicBeta = null)
    {
        if (JsonText.FindEncodingError(body) is { } encodingError)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson, encodingError);
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, JsonText.DocumentOptions);
        }
        catch (JsonException e)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson,
                $"The request body is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}). Send one JSON object.");
        }

        using (document)
        {
            var nativeOnly = new List<string>();
            var chat = ToChatBody(document.RootElement, countOnly, nativeOnly);
            return ChatRequest.Translated(chat, IngressFormat.Messages, body, nativeOnly.FirstOrDefault(), anthropicBeta);
        }
    }

    /// <summary>
    /// The Chat Completions body for a Messages request. What only an Anthropic model can take (server tools, document and
    /// search-result blocks, server tool blocks in the history) is left out of it and named in <paramref name="nativeOnly"/>:
    /// an Anthropic target gets the caller's own body, any other target refuses the request.
    /// </summary>
    public static byte[] ToChatBody(JsonElement root, bool countOnly, List<string> nativeOnly)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw BadRequest("The request body must be a JSON object.", null);
        }

        long max = 1;
        if (!(countOnly && !root.TryGetProperty("max_tokens", out _))
            && (!root.TryGetProperty("max_tokens", out var maxTokens) || maxTokens.ValueKind != JsonValueKind.Number || !maxTokens.TryGetInt64(out max) || max < 1))
        {
            throw BadRequest("'max_tokens' is required and must be a positive integer.", "max_tokens");
        }

        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw BadRequest("'messages' must be a non-empty array of {\"role\",\"content\"} objects.", "messages");
        }

        var buffer = new ArrayBufferWriter<byte>(Math.Max(1024, messages.GetRawText().Length + 256));
        using (var writer = new Utf8JsonWriter(buffer, AnthropicTranslator.WriterOptions))
        {
            writer.WriteStartObject();
            if (root.TryGetProperty("model", out var model))
            {
                if (model.ValueKind != JsonValueKind.String)
                {
                    throw BadRequest("'model' must be a string.", "model");
                }

                writer.WriteString("model"u8, model.GetString());
            }

            writer.WriteNumber("max_tokens"u8, max);
            writer.WriteStartArray("messages"u8);
            WriteSystem(root, writer);
            var i = 0;
            foreach (var message in messages.EnumerateArray())
            {
                WriteMessage(message, i++, writer, nativeOnly);
            }

            writer.WriteEndArray();
            WriteTools(root, writer, nativeOnly);
            CopyNumber(root, "temperature", writer);
            CopyNumber(root, "top_p", writer);
            WriteStop(root, writer);
            if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
                && metadata.TryGetProperty("user_id", out var user) && user.ValueKind == JsonValueKind.String)
            {
                writer.WriteString("user"u8, user.GetString());
            }

            if (root.TryGetProperty("stream", out var stream))
            {
                if (stream.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                {
                    throw BadRequest("'stream' must be true or false.", "stream");
                }

                if (stream.ValueKind == JsonValueKind.True)
                {
                    // The answer's usage goes in message_delta, so the stream must end with it.
                    writer.WriteBoolean("stream"u8, true);
                    writer.WriteStartObject("stream_options"u8);
                    writer.WriteBoolean("include_usage"u8, true);
                    writer.WriteEndObject();
                }
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteSystem(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("system", out var system) || system.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        var text = system.ValueKind switch
        {
            JsonValueKind.String => system.GetString()!,
            JsonValueKind.Array => JoinText(system, "system"),
            _ => throw BadRequest("'system' must be a string or an array of text blocks.", "system"),
        };
        if (text.Length > 0)
        {
            writer.WriteStartObject();
            writer.WriteString("role"u8, "system"u8);
            writer.WriteString("content"u8, text);
            writer.WriteEndObject();
        }
    }

    private static void WriteMessage(JsonElement message, int i, Utf8JsonWriter writer, List<string> nativeOnly)
    {
        var param = $"messages[{i}]";
        if (message.ValueKind != JsonValueKind.Object)
        {
            throw BadRequest($"{param} must be an object with 'role' and 'content'.", param);
        }

        var role = message.TryGetProperty("role", out var roleElement) && roleElement.ValueKind == JsonValueKind.String ? roleElement.GetString() : null;
        if (role is not ("user" or "assistant"))
        {
            throw BadRequest($"{param}.role must be \"user\" or \"assistant\" (the system prompt goes in 'system').", $"{param}.role");
        }

        if (!message.TryGetProperty("content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
        {
            throw BadRequest($"{param}.content must be a string or an array of content blocks.", $"{param}.content");
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            writer.WriteStartObject();
            writer.WriteString("role"u8, role);
            writer.WriteString("content"u8, content.GetString());
            writer.WriteEndObject();
            return;
        }

        if (role == "assistant")
        {
            WriteAssistant(content, param, writer, nativeOnly);
        }
        else
        {
            WriteUser(content, param, writer, nativeOnly);
        }
    }

    /// <summary>Text joins into the content, tool_use blocks become tool_calls; thinking has no Chat Completions form and stays behind.</summary>
    private static void WriteAssistant(JsonElement content, string param, Utf8JsonWriter writer, List<string> nativeOnly)
    {
        StringBuilder? text = null;
        var toolUses = 0;
        var j = 0;
        foreach (var block in content.EnumerateArray())
        {
            switch (Type(block, $"{param}.content[{j}]"))
            {
                case "text":
                    (text ??= new StringBuilder()).Append(String(block, "text", $"{param}.content[{j}]"));
                    break;
                case "tool_use":
                    String(block, "id", $"{param}.content[{j}]");
                    String(block, "name", $"{param}.content[{j}]");
                    if (!block.TryGetProperty("input", out var input) || input.ValueKind != JsonValueKind.Object)
                    {
                        throw BadRequest($"{param}.content[{j}].input must be an object.", $"{param}.content[{j}].input");
                    }

                    toolUses++;
                    break;
                case "thinking" or "redacted_thinking":
                    break;
                case var server when IsServerToolBlock(server):
                    nativeOnly.Add($"{param}.content[{j}] is an Anthropic server tool block ('{Safe(server)}')");
                    break;
                case var other:
                    throw BadRequest($"{param}.content[{j}] has type '{Safe(other)}'; an assistant turn holds text, tool_use, thinking, redacted_thinking and server tool blocks.", $"{param}.content[{j}].type");
            }

            j++;
        }

        writer.WriteStartObject();
        writer.WriteString("role"u8, "assistant"u8);
        if (text is null)
        {
            writer.WriteNull("content"u8);
        }
        else
        {
            writer.WriteString("content"u8, text.ToString());
        }

        if (toolUses > 0)
        {
            var scratch = new ArrayBufferWriter<byte>(256);
            writer.WriteStartArray("tool_calls"u8);
            foreach (var block in content.EnumerateArray())
            {
                if (!block.GetProperty("type").ValueEquals("tool_use"u8))
                {
                    continue;
                }

                writer.WriteStartObject();
                writer.WriteString("id"u8, block.GetProperty("id").GetString());
                writer.WriteString("type"u8, "function"u8);
                writer.WriteStartObject("function"u8);
                writer.WriteString("name"u8, block.GetProperty("name").GetString());
                scratch.ResetWrittenCount();
                using (var inner = new Utf8JsonWriter(scratch, AnthropicTranslator.WriterOptions))
                {
                    block.GetProperty("input").WriteTo(inner);
                }

                writer.WriteString("arguments"u8, scratch.WrittenSpan);
                writer.WriteEndObject();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
    }

    /// <summary>
    /// Tool results become tool messages, in order and first (Anthropic puts them first in the turn); text and images become
    /// one user message after them. Images inside a tool result (a tool message can only hold text) join that user message.
    /// </summary>
    private static void WriteUser(JsonElement content, string param, Utf8JsonWriter writer, List<string> nativeOnly)
    {
        var parts = new List<(JsonElement Block, string Param)>();
        var j = 0;
        foreach (var block in content.EnumerateArray())
        {
            var blockParam = $"{param}.content[{j}]";
            switch (Type(block, blockParam))
            {
                case "tool_result":
                    WriteToolResult(block, blockParam, writer, parts, nativeOnly);
                    break;
                case "text" or "image":
                    parts.Add((block, blockParam));
                    break;
                case "document" or "search_result":
                    // Left to an Anthropic model, but its text stays in the form guardrails scan and budgets count.
                    nativeOnly.Add($"{blockParam} is a '{Type(block, blockParam)}' block, which only Anthropic models read");
                    parts.Add((block, blockParam));
                    break;
                case var other:
                    throw BadRequest($"{blockParam} has type '{Safe(other)}'; a user turn holds text, image, document, search_result and tool_result blocks.", $"{blockParam}.type");
            }

            j++;
        }

        if (parts.Count == 0)
        {
            return;
        }

        writer.WriteStartObject();
        writer.WriteString("role"u8, "user"u8);
        writer.WriteStartArray("content"u8);
        foreach (var (block, blockParam) in parts)
        {
            WritePart(block, blockParam, writer);
        }

        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static void WriteToolResult(JsonElement block, string param, Utf8JsonWriter writer, List<(JsonElement, string)> images, List<string> nativeOnly)
    {
        var id = String(block, "tool_use_id", param);
        var text = new StringBuilder();
        if (block.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True)
        {
            // Chat Completions has no error flag on a tool message; the model still needs to know the tool failed.
            text.Append("[tool error] ");
        }

        if (block.TryGetProperty("content", out var content))
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                text.Append(content.GetString());
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                var k = 0;
                foreach (var inner in content.EnumerateArray())
                {
                    var innerParam = $"{param}.content[{k}]";
                    switch (Type(inner, innerParam))
                    {
                        case "text":
                            if (text.Length > 0 && text[^1] != ' ')
                            {
                                text.Append('\n');
                            }

                            text.Append(String(inner, "text", innerParam));
                            break;
                        case "image":
                            images.Add((inner, innerParam));
                            break;
                        case "document" or "search_result":
                            nativeOnly.Add($"{innerParam} is a '{Type(inner, innerParam)}' block, which only Anthropic models read");
                            text.Append(text.Length > 0 ? "\n" : "").Append(DocumentText(inner));
                            break;
                        case var other:
                            throw BadRequest($"{innerParam} has type '{Safe(other)}'; a tool_result holds text and image blocks.", $"{innerParam}.type");
                    }

                    k++;
                }
            }
            else if (content.ValueKind != JsonValueKind.Null)
            {
                throw BadRequest($"{param}.content must be a string or an array of text and image blocks.", $"{param}.content");
            }
        }

        writer.WriteStartObject();
        writer.WriteString("role"u8, "tool"u8);
        writer.WriteString("tool_call_id"u8, id);
        writer.WriteString("content"u8, text.ToString());
        writer.WriteEndObject();
    }

    private static void WritePart(JsonElement block, string param, Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        if (block.GetProperty("type").ValueEquals("text"u8))
        {
            writer.WriteString("type"u8, "text"u8);
            writer.WriteString("text"u8, String(block, "text", param));
        }
        else if (!block.GetProperty("type").ValueEquals("image"u8))
        {
            writer.WriteString("type"u8, "text"u8);
            writer.WriteString("text"u8, DocumentText(block));
        }
        else
        {
            if (!block.TryGetProperty("source", out var source) || source.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"{param}.source is required for an image block.", $"{param}.source");
            }

            var url = Type(source, $"{param}.source") switch
            {
                "base64" => $"data:{String(source, "media_type", $"{param}.source")};base64,{String(source, "data", $"{param}.source")}",
                "url" => String(source, "url", $"{param}.source"),
                _ => throw BadRequest($"{param}.source.type must be \"base64\" or \"url\".", $"{param}.source.type"),
            };
            writer.WriteString("type"u8, "image_url"u8);
            writer.WriteStartObject("image_url"u8);
            writer.WriteString("url"u8, url);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static void WriteTools(JsonElement root, Utf8JsonWriter writer, List<string> nativeOnly)
    {
        if (!root.TryGetProperty("tools", out var tools) || tools.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest("'tools' must be an array of tool definitions.", "tools");
        }

        if (tools.GetArrayLength() == 0)
        {
            return;
        }

        writer.WriteStartArray("tools"u8);
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            var param = $"tools[{i}]";
            if (tool.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"{param} must be an object with 'name' and 'input_schema'.", param);
            }

            if (tool.TryGetProperty("type", out var type) && !(type.ValueKind == JsonValueKind.String && type.ValueEquals("custom"u8)))
            {
                if (type.ValueKind != JsonValueKind.String)
                {
                    throw BadRequest($"{param}.type must be a string.", $"{param}.type");
                }

                nativeOnly.Add($"{param} is an Anthropic server tool ('{Safe(type.GetString()!)}')");
                i++;
                continue;
            }

            var name = String(tool, "name", param);
            if (!tool.TryGetProperty("input_schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"{param}.input_schema must be a JSON schema object.", $"{param}.input_schema");
            }

            writer.WriteStartObject();
            writer.WriteString("type"u8, "function"u8);
            writer.WriteStartObject("function"u8);
            writer.WriteString("name"u8, name);
            if (tool.TryGetProperty("description", out var description) && description.ValueKind == JsonValueKind.String)
            {
                writer.WriteString("description"u8, description.GetString());
            }

            writer.WritePropertyName("parameters"u8);
            schema.WriteTo(writer);
            writer.WriteEndObject();
            writer.WriteEndObject();
            i++;
        }

        writer.WriteEndArray();
        WriteToolChoice(root, writer);
    }

    private static void WriteToolChoice(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("tool_choice", out var choice) || choice.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (choice.ValueKind != JsonValueKind.Object)
        {
            throw BadRequest("'tool_choice' must be an object: {\"type\":\"auto\"|\"any\"|\"none\"} or {\"type\":\"tool\",\"name\":...}.", "tool_choice");
        }

        switch (Type(choice, "tool_choice"))
        {
            case "auto":
                writer.WriteString("tool_choice"u8, "auto"u8);
                break;
            case "any":
                writer.WriteString("tool_choice"u8, "required"u8);
                break;
            case "none":
                writer.WriteString("tool_choice"u8, "none"u8);
                break;
            case "tool":
                writer.WriteStartObject("tool_choice"u8);
                writer.WriteString("type"u8, "function"u8);
                writer.WriteStartObject("function"u8);
                writer.WriteString("name"u8, String(choice, "name", "tool_choice"));
                writer.WriteEndObject();
                writer.WriteEndObject();
                break;
            default:
                throw BadRequest("'tool_choice.type' must be \"auto\", \"any\", \"tool\" or \"none\".", "tool_choice.type");
        }

        if (choice.TryGetProperty("disable_parallel_tool_use", out var disable) && disable.ValueKind == JsonValueKind.True)
        {
            writer.WriteBoolean("parallel_tool_calls"u8, false);
        }
    }

    private static void WriteStop(JsonElement root, Utf8JsonWriter writer)
    {
        if (!root.TryGetProperty("stop_sequences", out var stop) || stop.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (stop.ValueKind != JsonValueKind.Array || stop.EnumerateArray().Any(s => s.ValueKind != JsonValueKind.String))
        {
            throw BadRequest("'stop_sequences' must be an array of strings.", "stop_sequences");
        }

        if (stop.GetArrayLength() > 0)
        {
            writer.WritePropertyName("stop"u8);
            stop.WriteTo(writer);
        }
    }

    private static string JoinText(JsonElement blocks, string param)
    {
        var text = new StringBuilder();
        var j = 0;
        foreach (var block in blocks.EnumerateArray())
        {
            if (Type(block, $"{param}[{j}]") != "text")
            {
                throw BadRequest($"{param}[{j}] must be a text block.", $"{param}[{j}].type");
            }

            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(String(block, "text", $"{param}[{j}]"));
            j++;
        }

        return text.ToString();
    }

    /// <summary>
    /// The readable text of a document or search_result block (plain-text sources, content blocks, title), or a marker for
    /// one that is binary (a PDF): what the policies see of it.
    /// </summary>
    private static string DocumentText(JsonElement block)
    {
        var text = new StringBuilder();
        void Add(string? piece)
        {
            if (!string.IsNullOrEmpty(piece))
            {
                text.Append(text.Length > 0 ? "\n" : "").Append(piece);
            }
        }

        string? Str(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        void AddContent(JsonElement content)
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                Add(content.GetString());
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                foreach (var inner in content.EnumerateArray())
                {
                    Add(Str(inner, "text"));
                }
            }
        }

        Add(Str(block, "title"));
        if (block.TryGetProperty("source", out var source) && source.ValueKind == JsonValueKind.Object)
        {
            switch (Str(source, "type"))
            {
                case "text":
                    Add(Str(source, "data"));
                    break;
                case "content" when source.TryGetProperty("content", out var content):
                    AddContent(content);
                    break;
                default:
                    Add($"[{Str(source, "media_type") ?? Str(source, "type") ?? "binary"} document]");
                    break;
            }
        }
        else if (Str(block, "source") is { } origin)
        {
            Add(origin);
        }

        if (block.TryGetProperty("content", out var blockContent))
        {
            AddContent(blockContent);
        }

        return text.Length == 0 ? "[document]" : text.ToString();
    }

    /// <summary>Blocks of tools that run on Anthropic's side (web search, code execution, ...): <c>server_tool_use</c> and their <c>*_tool_result</c>.</summary>
    private static bool IsServerToolBlock(string type) =>
        type is "server_tool_use" or "mcp_tool_use" or "mcp_tool_result" || type.EndsWith("_tool_result", StringComparison.Ordinal);

    private static string Safe(string text) => Flotilla.Fleet.DisplayText.Safe(text, 64);
}
