using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using static Flotilla.Gateway.Protocol.RequestFields;

namespace Flotilla.Gateway.Providers.Anthropic;

/// <summary>
/// Translates OpenAI chat completions to Anthropic's Messages API and back
/// (<see href="https://docs.anthropic.com/en/api/messages"/>). Pure functions over JSON: no I/O, no state.
/// </summary>
internal static class AnthropicTranslator
{
    /// <summary>The <c>max_tokens</c> sent when the caller sets none: Anthropic requires it, OpenAI does not.</summary>
    public const int DefaultMaxTokens = 4096;

    /// <summary>
    /// Model text is returned to API clients, never embedded in HTML, so only what JSON itself requires is escaped;
    /// the default encoder would turn every non-ASCII character into a six-byte <c>\uXXXX</c>.
    /// </summary>
    internal static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Builds the body of <c>POST /v1/messages</c> from an OpenAI <c>chat.completions</c> request.
    /// Throws <see cref="GatewayException"/> (400, naming the offending param) for input Anthropic cannot express.
    /// </summary>
    public static byte[] ToMessagesRequest(JsonElement openAiRequest, string upstreamModel, bool stream)
    {
        if (openAiRequest.ValueKind != JsonValueKind.Object)
        {
            throw BadRequest("The request body must be a JSON object.", null);
        }

        if (TryGet(openAiRequest, "n", out var n) && (!n.TryGetInt64(out var count) || count > 1))
        {
            throw BadRequest("Anthropic models return one choice per request: omit 'n' or set it to 1, and send several requests for several answers.", "n");
        }

        if (!TryGet(openAiRequest, "messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            throw BadRequest("'messages' must be a non-empty array of chat messages.", "messages");
        }

        var system = new StringBuilder();
        var turns = ReadTurns(messages, system);
        if (turns.Count == 0)
        {
            throw BadRequest("'messages' must contain at least one user or assistant message with content; Anthropic does not accept a system prompt alone.", "messages");
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("model"u8, upstreamModel);
            writer.WriteNumber("max_tokens"u8, ReadMaxTokens(openAiRequest));
            if (system.Length > 0)
            {
                writer.WriteString("system"u8, system.ToString());
            }

            writer.WriteStartArray("messages"u8);
            foreach (var turn in turns)
            {
                turn.WriteTo(writer);
            }

            writer.WriteEndArray();
            WriteTools(openAiRequest, writer);
            CopyNumber(openAiRequest, "temperature", writer);
            CopyNumber(openAiRequest, "top_p", writer);
            WriteStopSequences(openAiRequest, writer);
            WriteMetadata(openAiRequest, writer);
            writer.WriteBoolean("stream"u8, stream);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Translates a non-streaming Messages response into an OpenAI <c>chat.completion</c> whose <c>model</c> is <paramref name="model"/>.
    /// <paramref name="usage"/> counts cache reads and writes as input. <paramref name="time"/> stamps <c>created</c> (default: the system clock).
    /// Throws <see cref="FormatException"/> or <see cref="JsonException"/> when the body is not a Messages response.
    /// </summary>
    /// <param name="keepThinking">Carries thinking and redacted_thinking blocks, unchanged, in the message's <c>thinking_blocks</c>
    /// (for a caller that spoke Messages and gets them back; an OpenAI caller has no use for them).</param>
    public static byte[] ToChatCompletion(ReadOnlySpan<byte> messagesResponse, string model, out TokenUsage usage, TimeProvider? time = null, bool keepThinking = false)
    {
        var reader = new Utf8JsonReader(messagesResponse);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object
            || (root.TryGetProperty("type", out var type) && !type.ValueEquals("message"u8))
            || !root.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("The body is not an Anthropic Messages response: expected an object of type 'message' with a 'content' array.");
        }

        try
        {
            return WriteChatCompletion(root, content, model, time, keepThinking, out usage);
        }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException)
        {
            // A block without its fields (GetProperty) or of the wrong kind (GetString): the same failure as a missing content array.
            throw new FormatException("The body is not an Anthropic Messages response: " + e.Message, e);
        }
    }

    private static byte[] WriteChatCompletion(JsonElement root, JsonElement content, string model, TimeProvider? time, bool keepThinking, out TokenUsage usage)
    {
        var id = root.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.String
            ? "chatcmpl-" + idElement.GetString()
            : "chatcmpl-" + Guid.NewGuid().ToString("N");
        var stopReason = root.TryGetProperty("stop_reason", out var stop) && stop.ValueKind == JsonValueKind.String ? stop.GetString() : null;
        var tokens = root.TryGetProperty("usage", out var usageElement) ? AnthropicUsage.Read(usageElement) : default;
        usage = tokens.ToTokenUsage();

        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id"u8, id);
            writer.WriteString("object"u8, "chat.completion"u8);
            writer.WriteNumber("created"u8, (time ?? TimeProvider.System).GetUtcNow().ToUnixTimeSeconds());
            writer.WriteString("model"u8, model);
            writer.WriteStartArray("choices"u8);
            writer.WriteStartObject();
            writer.WriteNumber("index"u8, 0);
            writer.WriteStartObject("message"u8);
            writer.WriteString("role"u8, "assistant"u8);
            WriteAnswerContent(content, writer);
            if (keepThinking)
            {
                WriteThinkingBlocks(content, writer);
            }

            writer.WriteEndObject();
            writer.WriteString("finish_reason"u8, MapStopReason(stopReason));
            writer.WriteEndObject();
            writer.WriteEndArray();
            tokens.WriteOpenAiUsage(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The human message of an Anthropic error body <c>{"type":"error","error":{"type","message"}}</c>; null for any other body.</summary>
    public static string? ReadErrorMessage(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object
                && (!root.TryGetProperty("type", out var type) || type.ValueEquals("error"u8))
                && root.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object
                && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String
                ? message.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Anthropic <c>stop_reason</c> to OpenAI <c>finish_reason</c>; reasons OpenAI has no word for end as "stop".</summary>
    internal static string MapStopReason(string? stopReason) => stopReason switch
    {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        _ => "stop",
    };

    private static void WriteAnswerContent(JsonElement content, Utf8JsonWriter writer)
    {
        StringBuilder? text = null;
        var toolUses = 0;
        foreach (var block in content.EnumerateArray())
        {
            if (block.ValueKind != JsonValueKind.Object || !block.TryGetProperty("type", out var blockType))
            {
                throw new FormatException("A content block of the Messages response is not an object with a 'type'.");
            }

            if (blockType.ValueEquals("text"u8))
            {
                // Citations split one answer into several text blocks; they read as one text when concatenated.
                (text ??= new StringBuilder()).Append(block.GetProperty("text").GetString());
            }
            else if (blockType.ValueEquals("tool_use"u8))
            {
                toolUses++;
            }

            // thinking, redacted_thinking and server tool blocks have no place in a chat.completion message.
        }

        if (text is null)
        {
            writer.WriteNull("content"u8);
        }
        else
        {
            writer.WriteString("content"u8, text.ToString());
        }

        if (toolUses == 0)
        {
            return;
        }

        var arguments = new ArrayBufferWriter<byte>(256);
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
            writer.WriteString("arguments"u8, Compact(block.GetProperty("input"), arguments));
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static void WriteThinkingBlocks(JsonElement content, Utf8JsonWriter writer)
    {
        var wrote = false;
        foreach (var block in content.EnumerateArray())
        {
            if (block.GetProperty("type").ValueEquals("thinking"u8) || block.GetProperty("type").ValueEquals("redacted_thinking"u8))
            {
                if (!wrote)
                {
                    writer.WriteStartArray("thinking_blocks"u8);
                    wrote = true;
                }

                block.WriteTo(writer);
            }
        }

        if (wrote)
        {
            writer.WriteEndArray();
        }
    }

    /// <summary>A Messages body as the caller sent it, with only the model swapped for the target's.</summary>
    public static byte[] WithModel(byte[] messagesRequest, string upstreamModel)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(messagesRequest, documentOptions: JsonText.DocumentOptions)!.AsObject();
        node["model"] = upstreamModel;
        using var buffer = new MemoryStream(messagesRequest.Length + 64);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            node.WriteTo(writer);
        }

        return buffer.ToArray();
    }

    /// <summary>OpenAI carries tool arguments as a JSON string; the input is re-written so whitespace in the upstream body does not leak into it.</summary>
    private static ReadOnlySpan<byte> Compact(JsonElement input, ArrayBufferWriter<byte> scratch)
    {
        scratch.ResetWrittenCount();
        using (var inner = new Utf8JsonWriter(scratch, WriterOptions))
        {
            input.WriteTo(inner);
        }

        return scratch.WrittenSpan;
    }

    private static List<Turn> ReadTurns(JsonElement messages, StringBuilder system)
    {
        var turns = new List<Turn>();
        var blocks = new List<Block>();
        var i = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"messages[{i}] must be an object with a 'role'.", $"messages[{i}]");
            }

            var role = message.TryGetProperty("role", out var roleElement) && roleElement.ValueKind == JsonValueKind.String
                ? roleElement.GetString()
                : null;
            blocks.Clear();
            string anthropicRole;
            switch (role)
            {
                case "system" or "developer":
                    // Anthropic has one system prompt, outside the conversation; every system message joins it, in order.
                    AppendSystem(message, i, system);
                    i++;
                    continue;
                case "user":
                    anthropicRole = "user";
                    ReadUserContent(message, i, blocks);
                    break;
                case "assistant":
                    anthropicRole = "assistant";
                    ReadAssistant(message, i, blocks);
                    break;
                case "tool":
                    // Anthropic returns tool results inside the next user turn.
                    anthropicRole = "user";
                    blocks.Add(ReadToolResult(message, i));
                    break;
                case "function":
                    throw BadRequest($"messages[{i}] uses the deprecated 'function' role; send tool results as role 'tool' with a 'tool_call_id'.", $"messages[{i}].role");
                default:
                    throw BadRequest($"messages[{i}].role must be one of system, developer, user, assistant or tool.", $"messages[{i}].role");
            }

            i++;
            if (blocks.Count == 0)
            {
                // Anthropic rejects empty turns; skipping one may leave two same-role turns side by side, merged below.
                continue;
            }

            // Anthropic requires user and assistant turns to alternate, so consecutive same-role messages become one turn.
            if (turns.Count > 0 && turns[^1].Role == anthropicRole)
            {
                turns[^1].Blocks.AddRange(blocks);
            }
            else
            {
                turns.Add(new Turn(anthropicRole, [.. blocks]));
            }
        }

        return turns;
    }

    private static void AppendSystem(JsonElement message, int i, StringBuilder system)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        var text = ReadTextOnly(content, i);
        if (text.Length == 0)
        {
            return;
        }

        if (system.Length > 0)
        {
            system.Append("\n\n");
        }

        system.Append(text);
    }

    /// <summary>Content that can only be text (system and tool messages): a string or an array of text parts, joined.</summary>
    private static string ReadTextOnly(JsonElement content, int i)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest($"messages[{i}].content must be a string or an array of text parts.", $"messages[{i}].content");
        }

        var text = new StringBuilder();
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            if (!IsPart(part, "text"u8) || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
            {
                throw BadRequest($"messages[{i}].content[{j}] must be a text part: this role accepts only text.", $"messages[{i}].content[{j}].type");
            }

            if (text.Length > 0)
            {
                text.Append('\n');
            }

            text.Append(partText.GetString());
            j++;
        }

        return text.ToString();
    }

    private static void ReadUserContent(JsonElement message, int i, List<Block> blocks)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            throw BadRequest($"messages[{i}].content is required for a user message.", $"messages[{i}].content");
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            AddText(content.GetString()!, blocks);
            return;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest($"messages[{i}].content must be a string or an array of content parts.", $"messages[{i}].content");
        }

        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            if (IsPart(part, "text"u8))
            {
                AddText(ReadPartString(part, "text", i, j), blocks);
            }
            else if (IsPart(part, "image_url"u8))
            {
                blocks.Add(ReadImage(part, i, j));
            }
            else
            {
                throw BadRequest($"messages[{i}].content[{j}] is not supported by Anthropic models: send text or image_url parts.", $"messages[{i}].content[{j}].type");
            }

            j++;
        }
    }

    private static void ReadAssistant(JsonElement message, int i, List<Block> blocks)
    {
        if (message.TryGetProperty("content", out var content) && content.ValueKind != JsonValueKind.Null)
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                AddText(content.GetString()!, blocks);
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                var j = 0;
                foreach (var part in content.EnumerateArray())
                {
                    if (IsPart(part, "text"u8))
                    {
                        AddText(ReadPartString(part, "text", i, j), blocks);
                    }
                    else if (IsPart(part, "refusal"u8))
                    {
                        AddText(ReadPartString(part, "refusal", i, j), blocks);
                    }
                    else
                    {
                        throw BadRequest($"messages[{i}].content[{j}] must be a text or refusal part in an assistant message.", $"messages[{i}].content[{j}].type");
                    }

                    j++;
                }
            }
            else
            {
                throw BadRequest($"messages[{i}].content must be a string, an array of text parts or null.", $"messages[{i}].content");
            }
        }

        if (TryGet(message, "function_call", out _))
        {
            throw BadRequest($"messages[{i}].function_call is deprecated and not translated; send 'tool_calls' instead.", $"messages[{i}].function_call");
        }

        if (!TryGet(message, "tool_calls", out var toolCalls))
        {
            return;
        }

        var param = $"messages[{i}].tool_calls";
        if (toolCalls.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest($"{param} must be an array.", param);
        }

        var k = 0;
        foreach (var call in toolCalls.EnumerateArray())
        {
            if (call.ValueKind != JsonValueKind.Object
                || !call.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 } idText
                || !call.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object
                || !function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            {
                throw BadRequest($"{param}[{k}] must have an 'id' and a 'function' with a 'name'.", param);
            }

            blocks.Add(new ToolUseBlock(ToolUseId(idText), name.GetString()!, ReadArguments(function, param, k)));
            k++;
        }
    }

    /// <summary>The call's arguments as UTF-8 JSON of an object, checked here so a bad call fails as the caller's 400, not the upstream's.</summary>
    private static byte[] ReadArguments(JsonElement function, string param, int k)
    {
        if (!function.TryGetProperty("arguments", out var arguments) || arguments.ValueKind == JsonValueKind.Null)
        {
            return "{}"u8.ToArray();
        }

        if (arguments.ValueKind == JsonValueKind.Object)
        {
            // Not OpenAI's shape (a string), but unambiguous.
            return Encoding.UTF8.GetBytes(arguments.GetRawText());
        }

        if (arguments.ValueKind != JsonValueKind.String)
        {
            throw BadRequest($"{param}[{k}].function.arguments must be a string of JSON.", param);
        }

        var text = arguments.GetString()!;
        if (string.IsNullOrWhiteSpace(text))
        {
            // Some clients send "" for a call without parameters.
            return "{}"u8.ToArray();
        }

        var utf8 = Encoding.UTF8.GetBytes(text);
        if (IsOneJsonObject(utf8))
        {
            return utf8;
        }

        throw BadRequest($"{param}[{k}].function.arguments is not a JSON object; Anthropic needs tool input as an object. Send the arguments the model produced, unchanged.", param);
    }

    private static bool IsOneJsonObject(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            reader.Skip();

            // Anything after the object (a second value) makes the reader throw.
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ToolResultBlock ReadToolResult(JsonElement message, int i)
    {
        if (!message.TryGetProperty("tool_call_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 } idText)
        {
            throw BadRequest($"messages[{i}].tool_call_id is required for a tool message: set it to the id of the tool call it answers.", $"messages[{i}].tool_call_id");
        }

        var text = message.TryGetProperty("content", out var content) && content.ValueKind != JsonValueKind.Null
            ? ReadTextOnly(content, i)
            : "";
        return new ToolResultBlock(ToolUseId(idText), text);
    }

    private static ImageBlock ReadImage(JsonElement part, int i, int j)
    {
        var param = $"messages[{i}].content[{j}].image_url";
        if (!part.TryGetProperty("image_url", out var image))
        {
            throw BadRequest($"{param} is required for an image_url part.", param);
        }

        // OpenAI's shape is {"url": ...}; a bare string is an older form that clients still send.
        var urlElement = image;
        if (image.ValueKind == JsonValueKind.Object && !image.TryGetProperty("url", out urlElement))
        {
            throw BadRequest($"{param}.url is required.", param);
        }

        if (urlElement.ValueKind != JsonValueKind.String)
        {
            throw BadRequest($"{param}.url must be a string.", param);
        }

        var url = urlElement.GetString()!;
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = url.IndexOf(',', StringComparison.Ordinal);
            var header = comma < 0 ? default : url.AsSpan(5, comma - 5);
            var semicolon = header.IndexOf(';');
            if (comma < 0 || semicolon <= 0 || !header.EndsWith(";base64", StringComparison.OrdinalIgnoreCase))
            {
                throw BadRequest($"{param}.url must be a base64 data URL (data:image/png;base64,...) or an http(s) URL.", param);
            }

            return new ImageBlock(url, header[..semicolon].ToString(), comma + 1);
        }

        if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp))
        {
            return new ImageBlock(url, null, 0);
        }

        throw BadRequest($"{param}.url must be a base64 data URL (data:image/png;base64,...) or an http(s) URL.", param);
    }

    private static long ReadMaxTokens(JsonElement request)
    {
        // max_completion_tokens replaced max_tokens in OpenAI's API; when a caller sends both, the newer one wins.
        foreach (var name in (ReadOnlySpan<string>)["max_completion_tokens", "max_tokens"])
        {
            if (TryGet(request, name, out var value))
            {
                if (!value.TryGetInt64(out var tokens) || tokens < 1)
                {
                    throw BadRequest($"'{name}' must be a positive integer.", name);
                }

                return tokens;
            }
        }

        return DefaultMaxTokens;
    }

    private static void WriteTools(JsonElement request, Utf8JsonWriter writer)
    {
        if (!TryGet(request, "tools", out var tools))
        {
            return;
        }

        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest("'tools' must be an array of function tools.", "tools");
        }

        if (tools.GetArrayLength() == 0)
        {
            // Without tools a tool_choice means nothing, and Anthropic rejects one.
            return;
        }

        writer.WriteStartArray("tools"u8);
        var i = 0;
        foreach (var tool in tools.EnumerateArray())
        {
            if (!IsPart(tool, "function"u8) || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
            {
                throw BadRequest($"tools[{i}] must be {{\"type\":\"function\",\"function\":{{...}}}}: Anthropic models take function tools only.", $"tools[{i}].type");
            }

            if (!function.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
            {
                throw BadRequest($"tools[{i}].function.name is required.", $"tools[{i}].function.name");
            }

            writer.WriteStartObject();
            writer.WriteString("name"u8, name.GetString());
            if (TryGet(function, "description", out var description))
            {
                writer.WritePropertyName("description"u8);
                description.WriteTo(writer);
            }

            writer.WritePropertyName("input_schema"u8);
            if (TryGet(function, "parameters", out var parameters))
            {
                parameters.WriteTo(writer);
            }
            else
            {
                // OpenAI allows a function without parameters; Anthropic requires a schema.
                writer.WriteRawValue("""{"type":"object","properties":{}}"""u8, skipInputValidation: true);
            }

            writer.WriteEndObject();
            i++;
        }

        writer.WriteEndArray();
        WriteToolChoice(request, writer);
    }

    private static void WriteToolChoice(JsonElement request, Utf8JsonWriter writer)
    {
        var disableParallel = TryGet(request, "parallel_tool_calls", out var parallel) && parallel.ValueKind == JsonValueKind.False;
        string type;
        string? name = null;
        if (!TryGet(request, "tool_choice", out var choice))
        {
            if (!disableParallel)
            {
                return;
            }

            type = "auto";
        }
        else if (choice.ValueKind == JsonValueKind.String)
        {
            type = choice.GetString() switch
            {
                "auto" => "auto",
                "required" => "any",
                "none" => "none",
                _ => throw BadRequest("'tool_choice' must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice"),
            };
        }
        else if (IsPart(choice, "function"u8)
            && choice.TryGetProperty("function", out var function) && function.ValueKind == JsonValueKind.Object
            && function.TryGetProperty("name", out var nameElement) && nameElement.ValueKind == JsonValueKind.String)
        {
            type = "tool";
            name = nameElement.GetString();
        }
        else
        {
            throw BadRequest("'tool_choice' must be \"auto\", \"required\", \"none\" or {\"type\":\"function\",\"function\":{\"name\":...}}.", "tool_choice");
        }

        writer.WriteStartObject("tool_choice"u8);
        writer.WriteString("type"u8, type);
        if (name is not null)
        {
            writer.WriteString("name"u8, name);
        }

        // Anthropic's "none" choice takes no options.
        if (disableParallel && type != "none")
        {
            writer.WriteBoolean("disable_parallel_tool_use"u8, true);
        }

        writer.WriteEndObject();
    }

    private static void WriteStopSequences(JsonElement request, Utf8JsonWriter writer)
    {
        if (!TryGet(request, "stop", out var stop))
        {
            return;
        }

        if (stop.ValueKind == JsonValueKind.String)
        {
            if (stop.GetString() is { Length: > 0 } single)
            {
                writer.WriteStartArray("stop_sequences"u8);
                writer.WriteStringValue(single);
                writer.WriteEndArray();
            }

            return;
        }

        if (stop.ValueKind != JsonValueKind.Array)
        {
            throw BadRequest("'stop' must be a string or an array of strings.", "stop");
        }

        var wrote = false;
        foreach (var sequence in stop.EnumerateArray())
        {
            if (sequence.ValueKind != JsonValueKind.String)
            {
                throw BadRequest("'stop' must be a string or an array of strings.", "stop");
            }

            // Anthropic rejects an empty stop sequence; OpenAI ignores one.
            if (sequence.GetString() is not { Length: > 0 } text)
            {
                continue;
            }

            if (!wrote)
            {
                writer.WriteStartArray("stop_sequences"u8);
                wrote = true;
            }

            writer.WriteStringValue(text);
        }

        if (wrote)
        {
            writer.WriteEndArray();
        }
    }

    private static void WriteMetadata(JsonElement request, Utf8JsonWriter writer)
    {
        // Anthropic's metadata has a single field, the end user's id; OpenAI's 'user' plays that role.
        string? userId = null;
        if (TryGet(request, "metadata", out var metadata) && metadata.ValueKind == JsonValueKind.Object
            && metadata.TryGetProperty("user_id", out var id) && id.ValueKind == JsonValueKind.String)
        {
            userId = id.GetString();
        }
        else if (TryGet(request, "user", out var user) && user.ValueKind == JsonValueKind.String)
        {
            userId = user.GetString();
        }

        if (!string.IsNullOrEmpty(userId))
        {
            writer.WriteStartObject("metadata"u8);
            writer.WriteString("user_id"u8, userId);
            writer.WriteEndObject();
        }
    }

    /// <summary>
    /// Anthropic ids must match <c>^[a-zA-Z0-9_-]+$</c>; other characters become '_'. The same mapping applies to a
    /// tool call and to the result that answers it, so the pair still matches.
    /// </summary>
    private static string ToolUseId(string id)
    {
        if (!id.AsSpan().ContainsAnyExcept(ToolIdCharacters))
        {
            return id;
        }

        return string.Create(id.Length, id, static (span, source) =>
        {
            for (var c = 0; c < source.Length; c++)
            {
                span[c] = ToolIdCharacters.Contains(source[c]) ? source[c] : '_';
            }
        });
    }

    private static readonly SearchValues<char> ToolIdCharacters =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");

    private static void AddText(string text, List<Block> blocks)
    {
        // Anthropic rejects empty text blocks.
        if (text.Length > 0)
        {
            blocks.Add(new TextBlock(text));
        }
    }

    private static string ReadPartString(JsonElement part, string property, int i, int j)
    {
        if (!part.TryGetProperty(property, out var value) || value.ValueKind != JsonValueKind.String)
        {
            throw BadRequest($"messages[{i}].content[{j}].{property} must be a string.", $"messages[{i}].content[{j}].{property}");
        }

        return value.GetString()!;
    }

    private static bool IsPart(JsonElement element, ReadOnlySpan<byte> type) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type"u8, out var value)
        && value.ValueKind == JsonValueKind.String && value.ValueEquals(type);


    private sealed record Turn(string Role, List<Block> Blocks)
    {
        public void WriteTo(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("role"u8, Role);
            if (Blocks is [TextBlock only])
            {
                writer.WriteString("content"u8, only.Text);
            }
            else
            {
                writer.WriteStartArray("content"u8);

                // Anthropic requires a user turn's tool_result blocks to come before any other content.
                foreach (var block in Blocks)
                {
                    if (block is ToolResultBlock)
                    {
                        block.WriteTo(writer);
                    }
                }

                foreach (var block in Blocks)
                {
                    if (block is not ToolResultBlock)
                    {
                        block.WriteTo(writer);
                    }
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }
    }

    private abstract record Block
    {
        public abstract void WriteTo(Utf8JsonWriter writer);
    }

    private sealed record TextBlock(string Text) : Block
    {
        public override void WriteTo(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "text"u8);
            writer.WriteString("text"u8, Text);
            writer.WriteEndObject();
        }
    }

    /// <summary>An image by URL, or (with a media type) the base64 payload of a data URL, which starts at <paramref name="DataStart"/>.</summary>
    private sealed record ImageBlock(string Url, string? MediaType, int DataStart) : Block
    {
        public override void WriteTo(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "image"u8);
            writer.WriteStartObject("source"u8);
            if (MediaType is null)
            {
                writer.WriteString("type"u8, "url"u8);
                writer.WriteString("url"u8, Url);
            }
            else
            {
                writer.WriteString("type"u8, "base64"u8);
                writer.WriteString("media_type"u8, MediaType);
                writer.WriteString("data"u8, Url.AsSpan(DataStart));
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        }
    }

    /// <summary>A tool call; <paramref name="Input"/> is UTF-8 JSON of an object, already validated.</summary>
    private sealed record ToolUseBlock(string Id, string Name, byte[] Input) : Block
    {
        public override void WriteTo(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "tool_use"u8);
            writer.WriteString("id"u8, Id);
            writer.WriteString("name"u8, Name);
            writer.WritePropertyName("input"u8);
            writer.WriteRawValue(Input, skipInputValidation: true);
            writer.WriteEndObject();
        }
    }

    private sealed record ToolResultBlock(string ToolUseId, string Content) : Block
    {
        public override void WriteTo(Utf8JsonWriter writer)
        {
            writer.WriteStartObject();
            writer.WriteString("type"u8, "tool_result"u8);
            writer.WriteString("tool_use_id"u8, ToolUseId);

            // Anthropic rejects an empty text; a result without content is how it says "nothing came back".
            if (Content.Length > 0)
            {
                writer.WriteString("content"u8, Content);
            }

            writer.WriteEndObject();
        }
    }
}

/// <summary>
/// Anthropic's usage counters. Cache reads and writes are billed as input, so OpenAI's <c>prompt_tokens</c> includes them.
/// </summary>
internal record struct AnthropicUsage(long Input, long CacheRead, long CacheCreation, long Output)
{
    public readonly long Prompt => Input + CacheRead + CacheCreation;

    public readonly TokenUsage ToTokenUsage() => new(Prompt, Output);

    public static AnthropicUsage Read(JsonElement usage)
    {
        var counts = default(AnthropicUsage);
        counts.Update(usage);
        return counts;
    }

    /// <summary>Overwrites the counters present in <paramref name="usage"/>: stream events report running totals, each holding some of them.</summary>
    public void Update(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        Input = ReadOr(usage, "input_tokens", Input);
        CacheRead = ReadOr(usage, "cache_read_input_tokens", CacheRead);
        CacheCreation = ReadOr(usage, "cache_creation_input_tokens", CacheCreation);
        Output = ReadOr(usage, "output_tokens", Output);
    }

    public readonly void WriteOpenAiUsage(Utf8JsonWriter writer)
    {
        writer.WriteStartObject("usage"u8);
        writer.WriteNumber("prompt_tokens"u8, Prompt);
        writer.WriteNumber("completion_tokens"u8, Output);
        writer.WriteNumber("total_tokens"u8, Prompt + Output);
        if (CacheRead > 0 || CacheCreation > 0)
        {
            // cache_creation_tokens is not OpenAI's: it lets a Messages caller get Anthropic's own counters back.
            writer.WriteStartObject("prompt_tokens_details"u8);
            writer.WriteNumber("cached_tokens"u8, CacheRead);
            if (CacheCreation > 0)
            {
                writer.WriteNumber("cache_creation_tokens"u8, CacheCreation);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndObject();
    }

    private static long ReadOr(JsonElement usage, string name, long fallback) =>
        usage.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number)
            ? number
            : fallback;
}
