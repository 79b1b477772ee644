using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Errors;

namespace Flotilla.Gateway.Protocol;

/// <summary>
/// A chat or embeddings request body, scanned once with <see cref="Utf8JsonReader"/> (which also validates the JSON):
/// the gateway needs only a few top-level fields on the hot path, and forwards the original bytes to
/// OpenAI-compatible upstreams with just the model replaced. Providers that translate use <see cref="Document"/>.
/// </summary>
internal sealed class ChatRequest
{
    private static readonly byte[] ModelProperty = "model"u8.ToArray();
    private JsonDocument? _document;

    // Offset in Body of the top-level object's opening brace (after any leading whitespace).
    private int _objectStart;

    private ChatRequest(byte[] body)
    {
        Body = body;
    }

    public byte[] Body { get; }

    public string? Model { get; private set; }

    /// <summary>Offset and length in <see cref="Body"/> of the model's JSON string (quotes included); length 0 when absent.</summary>
    public (int Start, int Length) ModelToken { get; private set; }

    public bool Stream { get; private set; }

    /// <summary>The caller asked for the usage chunk (<c>stream_options.include_usage</c>).</summary>
    public bool IncludeUsage { get; private set; }

    public bool HasStreamOptions { get; private set; }

    public long? MaxTokens { get; private set; }

    public bool HasTools { get; private set; }

    public JsonElement Document => (_document ??= JsonDocument.Parse(Body, JsonText.DocumentOptions)).RootElement;

    /// <summary>The wire format the caller spoke; <see cref="Body"/> is always its Chat Completions form.</summary>
    public IngressFormat Ingress { get; private init; }

    /// <summary>
    /// The caller's own body when it spoke another provider's format (Anthropic Messages): a provider of that format sends it
    /// with only the model swapped instead of translating <see cref="Body"/> back. Null once a guardrail changed the request.
    /// </summary>
    public byte[]? NativeBody { get; private init; }

    /// <summary>
    /// Why only a provider of the caller's own format can take this request (it holds what the Chat Completions form cannot:
    /// an Anthropic server tool, a document block); null when any target can.
    /// </summary>
    public string? NativeOnly { get; private init; }

    /// <summary>The caller's <c>anthropic-beta</c> header, sent on with its own body to an Anthropic target.</summary>
    public string? AnthropicBeta { get; private init; }

    /// <summary>A request translated from another wire format, in its Chat Completions form.</summary>
    public static ChatRequest Translated(byte[] chatBody, IngressFormat ingress, byte[]? nativeBody, string? nativeOnly = null, string? anthropicBeta = null)
    {
        var parsed = ParseChat(chatBody);
        return new ChatRequest(parsed) { Ingress = ingress, NativeBody = nativeBody, NativeOnly = nativeBody is null ? null : nativeOnly, AnthropicBeta = anthropicBeta };
    }

    /// <summary>The same call with a changed (redacted) body: the caller's native body no longer says what is sent.</summary>
    public ChatRequest WithBody(byte[] chatBody) => new(ParseChat(chatBody)) { Ingress = Ingress, NativeOnly = NativeOnly };

    private ChatRequest(ChatRequest parsed)
        : this(parsed.Body)
    {
        _document = parsed._document;
        _objectStart = parsed._objectStart;
        Model = parsed.Model;
        ModelToken = parsed.ModelToken;
        Stream = parsed.Stream;
        IncludeUsage = parsed.IncludeUsage;
        HasStreamOptions = parsed.HasStreamOptions;
        MaxTokens = parsed.MaxTokens;
        HasTools = parsed.HasTools;
    }

    /// <summary>Scans a chat completions body; throws <see cref="GatewayException"/> (400) on malformed input.</summary>
    public static ChatRequest ParseChat(byte[] body) => Parse(body, requireMessages: true);

    /// <summary>Scans an embeddings body: <c>input</c> is required instead of <c>messages</c>.</summary>
    public static ChatRequest ParseEmbeddings(byte[] body) => Parse(body, requireMessages: false);

    private static ChatRequest Parse(byte[] body, bool requireMessages)
    {
        if (JsonText.FindEncodingError(body) is { } encodingError)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson, encodingError);
        }

        var request = new ChatRequest(body);
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = JsonText.MaxDepth });
        var seen = Seen.None;
        var sawRequired = false;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, "The request body must be a JSON object.");
            }

            request._objectStart = (int)reader.TokenStartIndex;

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals(ModelProperty))
                {
                    Once(ref seen, Seen.Model, "model");
                    reader.Read();
                    // A null model is still a token to replace: adding a second "model" key would leave the null in force
                    // for upstreams that keep the last duplicate.
                    var start = (int)reader.TokenStartIndex;
                    request.ModelToken = (start, (int)reader.BytesConsumed - start);
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        continue;
                    }

                    Expect(ref reader, JsonTokenType.String, "model", "a string");
                    request.Model = reader.GetString();
                }
                else if (reader.ValueTextEquals("stream"u8))
                {
                    Once(ref seen, Seen.Stream, "stream");
                    reader.Read();
                    if (reader.TokenType is JsonTokenType.True or JsonTokenType.False)
                    {
                        request.Stream = reader.GetBoolean();
                    }
                    else if (reader.TokenType != JsonTokenType.Null)
                    {
                        throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, "'stream' must be true or false.", "stream");
                    }
                }
                else if (reader.ValueTextEquals("stream_options"u8))
                {
                    Once(ref seen, Seen.StreamOptions, "stream_options");
                    reader.Read();
                    // Present even when null, so a forced include_usage replaces it rather than adding a second key.
                    request.HasStreamOptions = true;
                    if (reader.TokenType == JsonTokenType.Null)
                    {
                        continue;
                    }

                    Expect(ref reader, JsonTokenType.StartObject, "stream_options", "an object");
                    while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        var isIncludeUsage = reader.ValueTextEquals("include_usage"u8);
                        reader.Read();
                        if (isIncludeUsage && reader.TokenType is JsonTokenType.True)
                        {
                            request.IncludeUsage = true;
                        }

                        reader.Skip();
                    }
                }
                else if (reader.ValueTextEquals("max_tokens"u8) || reader.ValueTextEquals("max_completion_tokens"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var max) && max > 0)
                    {
                        request.MaxTokens = max;
                    }
                    else if (reader.TokenType != JsonTokenType.Null)
                    {
                        throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, "'max_tokens' must be a positive integer.", "max_tokens");
                    }
                }
                else if (requireMessages && reader.ValueTextEquals("messages"u8))
                {
                    Once(ref seen, Seen.Messages, "messages");
                    reader.Read();
                    Expect(ref reader, JsonTokenType.StartArray, "messages", "an array of message objects");
                    var count = 0;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        if (reader.TokenType != JsonTokenType.StartObject)
                        {
                            throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, $"'messages[{count}]' must be an object with 'role' and 'content'.", $"messages[{count}]");
                        }

                        reader.Skip();
                        count++;
                    }

                    if (count == 0)
                    {
                        throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, "'messages' must contain at least one message.", "messages");
                    }

                    sawRequired = true;
                }
                else if (!requireMessages && reader.ValueTextEquals("input"u8))
                {
                    Once(ref seen, Seen.Input, "input");
                    reader.Read();
                    if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.StartArray))
                    {
                        throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, "'input' must be a string or an array of strings.", "input");
                    }

                    reader.Skip();
                    sawRequired = true;
                }
                else if (reader.ValueTextEquals("tools"u8))
                {
                    Once(ref seen, Seen.Tools, "tools");
                    reader.Read();
                    request.HasTools = reader.TokenType == JsonTokenType.StartArray;
                    reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
            {
                throw GatewayException.BadRequest(ErrorCodes.InvalidJson, "The request body is not valid JSON: unexpected content after the top-level object.");
            }
        }
        catch (JsonException e) when (reader.CurrentDepth >= JsonText.MaxDepth - 1)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson,
                $"The request body nests deeper than {JsonText.MaxDepth} levels (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}); flatten it.");
        }
        catch (JsonException e)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson,
                $"The request body is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}). Send one JSON object.");
        }

        if (!sawRequired)
        {
            var name = requireMessages ? "messages" : "input";
            throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, $"'{name}' is required.", name);
        }

        return request;
    }

    [Flags]
    private enum Seen
    {
        None = 0, Model = 1, Stream = 2, StreamOptions = 4, Messages = 8, Input = 16, Tools = 32,
    }

    /// <summary>
    /// A key the gateway acts on may appear once: with two "model" keys, the gateway and an upstream parser that keeps the
    /// other one would disagree about what was asked for (and what was governed).
    /// </summary>
    private static void Once(ref Seen seen, Seen key, string name)
    {
        if ((seen & key) != 0)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidJson, $"The request body has '{name}' more than once; send each key once.", name);
        }

        seen |= key;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string param, string what)
    {
        if (reader.TokenType != type)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidRequest, $"'{param}' must be {what}.", param);
        }
    }

    /// <summary>
    /// The body with the model replaced and, when <paramref name="forceUsage"/>, <c>stream_options.include_usage</c> added, as
    /// segments to write without copying the original.
    /// </summary>
    public BodySegments RewriteForUpstream(string upstreamModel, bool forceUsage)
    {
        var modelJson = JsonEncodedText.Encode(upstreamModel);
        var prefix = ReadOnlyMemory<byte>.Empty;
        if (forceUsage && !HasStreamOptions)
        {
            prefix = "{\"stream_options\":{\"include_usage\":true},"u8.ToArray();
        }
        else if (forceUsage && !IncludeUsage)
        {
            // Rare: stream_options present without include_usage; rewrite through the DOM.
            var node = System.Text.Json.Nodes.JsonNode.Parse(Body)!.AsObject();
            if (node["stream_options"] is System.Text.Json.Nodes.JsonObject options)
            {
                options["include_usage"] = true;
            }
            else
            {
                node["stream_options"] = new System.Text.Json.Nodes.JsonObject { ["include_usage"] = true };
            }

            node["model"] = upstreamModel;
            return new BodySegments(Encoding.UTF8.GetBytes(node.ToJsonString()), default, default, default);
        }

        // The body may start with whitespace: everything inserted goes right after the opening brace.
        var afterBrace = _objectStart + 1;
        var (start, length) = ModelToken;
        if (length == 0)
        {
            // No model in the body: add it after the opening brace.
            var head = Encoding.UTF8.GetBytes($"{{\"model\":\"{modelJson}\"{(Body.AsSpan(afterBrace).TrimStart(" \t\r\n"u8).StartsWith("}"u8) ? "" : ",")}");
            return prefix.IsEmpty
                ? new BodySegments(head, Body.AsMemory(afterBrace), default, default)
                : new BodySegments(prefix, head.AsMemory(1), Body.AsMemory(afterBrace), default);
        }

        var quoted = Encoding.UTF8.GetBytes($"\"{modelJson}\"");
        return prefix.IsEmpty
            ? new BodySegments(Body.AsMemory(0, start), quoted, Body.AsMemory(start + length), default)
            : new BodySegments(prefix, Body.AsMemory(afterBrace, start - afterBrace), quoted, Body.AsMemory(start + length));
    }
}

/// <summary>The wire format a model call arrived in.</summary>
internal enum IngressFormat
{
    /// <summary>OpenAI Chat Completions (<c>/v1/chat/completions</c>), also every in-process call.</summary>
    ChatCompletions,

    /// <summary>Anthropic Messages (<c>/v1/messages</c>).</summary>
    Messages,

    /// <summary>OpenAI Responses (<c>/v1/responses</c>).</summary>
    Responses,
}

/// <summary>Up to four byte ranges that together form a request body.</summary>
internal readonly record struct BodySegments(ReadOnlyMemory<byte> A, ReadOnlyMemory<byte> B, ReadOnlyMemory<byte> C, ReadOnlyMemory<byte> D)
{
    public int Length => A.Length + B.Length + C.Length + D.Length;

    public byte[] ToArray()
    {
        var result = new byte[Length];
        var span = result.AsSpan();
        A.Span.CopyTo(span);
        B.Span.CopyTo(span[A.Length..]);
        C.Span.CopyTo(span[(A.Length + B.Length)..]);
        D.Span.CopyTo(span[(A.Length + B.Length + C.Length)..]);
        return result;
    }
}
