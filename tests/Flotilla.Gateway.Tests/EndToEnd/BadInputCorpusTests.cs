using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>
/// The bad-input corpus over real sockets: every case gets its own status with an error in the protocol's format (never a
/// 500, never a message that echoes a control character or 100 KB of the input), the server keeps serving after each, and
/// every call an agent made is in the trace store afterwards. Add a row for every new endpoint.
/// (The fleet file's rows are in Flotilla.Fleet.Tests: BadFleetCorpusTests.)
/// </summary>
public sealed class BadInputCorpusTests
{
    private const string Fleet = """
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - { name: sim-chat, provider: sim }
            - { name: sim-embed, provider: sim, type: embedding }
          limits: { max_request_body_bytes: 65536 }
        """;

    private const string Chat = "/v1/chat/completions";
    private const string Embed = "/v1/embeddings";
    private const string Messages = "/v1/messages";
    private const string Responses = "/v1/responses";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private enum Caller { Agent, Admin, None }

    /// <param name="Traced">An agent's call to a model endpoint: it must leave a trace, refused or not.</param>
    private sealed record Case(string Name, string Method, string Path, byte[]? Body, int Status, string? Code = null,
        Caller As = Caller.Agent, string? ContentType = "application/json", (string Name, string Value)[]? Headers = null, bool Traced = false);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static byte[] Bytes(string before, byte[] raw, string after) => [.. Utf8(before), .. raw, .. Utf8(after)];

    private static string Message(string content) => $$"""{"model":"sim-chat","messages":[{"role":"user","content":{{content}}}]}""";

    private static string Nested(int depth) => Message(new string('[', depth) + new string(']', depth));

    private static Case ChatCase(string name, string body, int status, string? code) => new(name, "POST", Chat, Utf8(body), status, code, Traced: true);

    private static Case ChatBytes(string name, byte[] body, int status, string? code) => new(name, "POST", Chat, body, status, code, Traced: true);

    private static Case Tagged(string name, string metadata) =>
        new(name, "POST", Chat, Utf8(Message("\"hi\"")), 400, "invalid_metadata", Headers: [("X-Flotilla-Metadata", metadata)], Traced: true);

    private static Case MessagesCase(string name, string body, int status, string? code) => new(name, "POST", Messages, Utf8(body), status, code, Traced: true);

    private static Case ResponsesCase(string name, string body, int status, string? code) => new(name, "POST", Responses, Utf8(body), status, code, Traced: true);

    private static string Ask(string messages, string extra = "") => $$"""{"model":"sim-chat","max_tokens":50,"messages":{{messages}}{{extra}}}""";

    private static string UserBlocks(string blocks) => Ask($$"""[{"role":"user","content":{{blocks}}}]""");

    private static readonly Case[] Cases =
    [
        // Anthropic Messages: answered in Anthropic's error format (the code is in X-Flotilla-Error-Code).
        MessagesCase("messages: truncated JSON", """{"model":"sim-chat","max_tokens":5,"messages":[{"role":""", 400, "invalid_json"),
        MessagesCase("messages: empty body", "", 400, "invalid_json"),
        MessagesCase("messages: body is an array", "[]", 400, "invalid_request"),
        MessagesCase("messages: no max_tokens", """{"model":"sim-chat","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        MessagesCase("messages: max_tokens is text", Ask("""[{"role":"user","content":"hi"}]""").Replace("50", "\"lots\""), 400, "invalid_request"),
        MessagesCase("messages: no messages", Ask("[]"), 400, "invalid_request"),
        MessagesCase("messages: a system role in messages", Ask("""[{"role":"system","content":"hi"}]"""), 400, "invalid_request"),
        MessagesCase("messages: an unknown block type", UserBlocks("""[{"type":"hologram","data":"x"}]"""), 400, "invalid_request"),
        MessagesCase("messages: a block without a type", UserBlocks("""[{"text":"hi"}]"""), 400, "invalid_request"),
        MessagesCase("messages: an image without a source", UserBlocks("""[{"type":"image"}]"""), 400, "invalid_request"),
        MessagesCase("messages: a tool_result without its id", UserBlocks("""[{"type":"tool_result","content":"x"}]"""), 400, "invalid_request"),
        MessagesCase("messages: tool_use in a user turn", UserBlocks("""[{"type":"tool_use","id":"t","name":"n","input":{}}]"""), 400, "invalid_request"),
        MessagesCase("messages: a server tool for a model that is not Anthropic's", Ask("""[{"role":"user","content":"hi"}]""", ""","tools":[{"type":"web_search_20250305","name":"web_search"}]"""), 400, "unsupported"),
        MessagesCase("messages: a document for a model that is not Anthropic's", UserBlocks("""[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]"""), 400, "unsupported"),
        MessagesCase("messages: a tool without a schema", Ask("""[{"role":"user","content":"hi"}]""", ""","tools":[{"name":"t"}]"""), 400, "invalid_request"),
        MessagesCase("messages: tool_choice is a string", Ask("""[{"role":"user","content":"hi"}]""", ""","tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":"auto" """), 400, "invalid_request"),
        MessagesCase("messages: stream is text", Ask("""[{"role":"user","content":"hi"}]""", ""","stream":"yes" """), 400, "invalid_request"),
        MessagesCase("messages: lone surrogate", Ask("""[{"role":"user","content":"\ud800"}]"""), 400, "invalid_json"),
        new("messages: raw 0xFF", "POST", Messages, Bytes("""{"model":"sim-chat","max_tokens":5,"messages":[{"role":"user","content":"a""", [0xFF], "\"}]}"), 400, "invalid_json", Traced: true),
        MessagesCase("messages: nested 100 deep", Ask($$"""[{"role":"user","content":"hi","x":{{new string('[', 100)}}{{new string(']', 100)}}}]"""), 400, "invalid_json"),
        MessagesCase("messages: a 100 KB body", Ask($$"""[{"role":"user","content":"{{new string('m', 100_000)}}"}]"""), 413, "request_too_large"),
        MessagesCase("messages: an unknown model", Ask("""[{"role":"user","content":"hi"}]""").Replace("sim-chat", "claude-\\u001b[31m"), 404, "model_not_found"),
        new("messages: no key", "POST", Messages, Utf8(Ask("""[{"role":"user","content":"hi"}]""")), 401, "missing_api_key", As: Caller.None),
        new("messages: a wrong x-api-key", "POST", Messages, Utf8(Ask("""[{"role":"user","content":"hi"}]""")), 401, "invalid_api_key", As: Caller.None, Headers: [("x-api-key", "sk-ant-not-ours")]),
        new("messages: count_tokens of broken JSON", "POST", Messages + "/count_tokens", Utf8("""{"messages":["""), 400, "invalid_json"),
        new("messages: GET", "GET", Messages, null, 404, "unknown_endpoint"),
        // OpenAI Responses: answered in OpenAI's error format.
        ResponsesCase("responses: truncated JSON", """{"model":"sim-chat","input":""", 400, "invalid_json"),
        ResponsesCase("responses: empty body", "", 400, "invalid_json"),
        ResponsesCase("responses: body is an array", "[]", 400, "invalid_request"),
        ResponsesCase("responses: no input", """{"model":"sim-chat"}""", 400, "invalid_request"),
        ResponsesCase("responses: input is a number", """{"model":"sim-chat","input":7}""", 400, "invalid_request"),
        ResponsesCase("responses: an unknown item type", """{"model":"sim-chat","input":[{"type":"hologram"}]}""", 400, "invalid_request"),
        ResponsesCase("responses: a function_call_output without call_id", """{"model":"sim-chat","input":[{"type":"function_call_output","output":"x"}]}""", 400, "invalid_request"),
        ResponsesCase("responses: an unknown content part", """{"model":"sim-chat","input":[{"role":"user","content":[{"type":"input_audio"}]}]}""", 400, "invalid_request"),
        ResponsesCase("responses: a hosted tool", """{"model":"sim-chat","input":"hi","tools":[{"type":"web_search"}]}""", 400, "invalid_request"),
        ResponsesCase("responses: max_output_tokens is 0", """{"model":"sim-chat","input":"hi","max_output_tokens":0}""", 400, "invalid_request"),
        ResponsesCase("responses: previous_response_id is a number", """{"model":"sim-chat","input":"hi","previous_response_id":5}""", 400, "invalid_request"),
        ResponsesCase("responses: an unknown previous_response_id", """{"model":"sim-chat","input":"hi","previous_response_id":"resp_\u001b[31m"}""", 404, "previous_response_not_found"),
        ResponsesCase("responses: lone surrogate", """{"model":"sim-chat","input":"\udfff"}""", 400, "invalid_json"),
        new("responses: raw 0xFF", "POST", Responses, Bytes("""{"model":"sim-chat","input":"a""", [0xFF], "\"}"), 400, "invalid_json", Traced: true),
        ResponsesCase("responses: a 100 KB body", $$"""{"model":"sim-chat","input":"{{new string('m', 100_000)}}"}""", 413, "request_too_large"),
        new("responses: no key", "POST", Responses, Utf8("""{"model":"sim-chat","input":"hi"}"""), 401, "missing_api_key", As: Caller.None),
        // Chat completions: broken JSON.
        ChatCase("truncated JSON", """{"model":"sim-chat","messages":[{"role":"user","content":"hel""", 400, "invalid_json"),
        ChatCase("empty body", "", 400, "invalid_json"),
        ChatCase("whitespace only", "   \n ", 400, "invalid_json"),
        ChatCase("body is an array", "[]", 400, "invalid_request"),
        ChatCase("body is a string", "\"hello\"", 400, "invalid_request"),
        ChatCase("body is null", "null", 400, "invalid_request"),
        ChatCase("content after the object", Message("\"hi\"") + " x", 400, "invalid_json"),
        ChatCase("two objects", Message("\"hi\"") + Message("\"hi\""), 400, "invalid_json"),
        ChatCase("comments", """{"model":"sim-chat", /* c */ "messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_json"),
        ChatCase("single quotes", """{'model':'sim-chat','messages':[]}""", 400, "invalid_json"),
        ChatCase("NaN", """{"model":"sim-chat","temperature":NaN,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_json"),
        // Wrong types.
        ChatCase("messages is an object", """{"model":"sim-chat","messages":{"role":"user","content":"hi"}}""", 400, "invalid_request"),
        ChatCase("messages is empty", """{"model":"sim-chat","messages":[]}""", 400, "invalid_request"),
        ChatCase("a message is a number", """{"model":"sim-chat","messages":[7]}""", 400, "invalid_request"),
        ChatCase("model is a number", """{"model":7,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        ChatCase("model is an object", """{"model":{"x":1},"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        ChatCase("stream is a string", """{"model":"sim-chat","stream":"yes","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        ChatCase("max_tokens is negative", """{"model":"sim-chat","max_tokens":-5,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        ChatCase("max_tokens is a string", """{"model":"sim-chat","max_tokens":"10","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        ChatCase("stream_options is an array", """{"model":"sim-chat","stream_options":[],"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        // Nesting.
        ChatCase("nested 65 deep", Nested(62), 400, "invalid_json"),
        ChatCase("nested 100 deep", Nested(97), 400, "invalid_json"),
        ChatCase("nested 128 deep", Nested(125), 400, "invalid_json"),
        ChatCase("nested 60 deep is fine", Nested(55), 200, null),
        // Encodings.
        ChatCase("lone high surrogate in model", """{"model":"\ud800","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_json"),
        ChatCase("lone low surrogate in content", Message("\"a\\udc00b\""), 400, "invalid_json"),
        ChatCase("high surrogate before a letter", Message("\"\\ud83d\\u0041\""), 400, "invalid_json"),
        ChatCase("lone surrogate in a message key", """{"model":"sim-chat","messages":[{"role":"user","\ud800":1,"content":"hi"}]}""", 400, "invalid_json"),
        ChatCase("a surrogate pair is fine", Message("\"\\ud83d\\ude00\""), 200, null),
        ChatCase("an escaped backslash before u is text", Message("\"C:\\\\ud800\""), 200, null),
        ChatCase("an escaped NUL is text", Message("\"a\\u0000b\""), 200, null),
        ChatBytes("raw 0xFF byte", Bytes("""{"model":"sim-chat","messages":[{"role":"user","content":"a""", [0xFF], "\"}]}"), 400, "invalid_json"),
        ChatBytes("overlong UTF-8", Bytes("""{"model":"sim-chat","messages":[{"role":"user","content":"a""", [0xC0, 0xAF], "\"}]}"), 400, "invalid_json"),
        ChatBytes("truncated UTF-8 sequence", Bytes("""{"model":"sim-chat","messages":[{"role":"user","content":"a""", [0xE2, 0x82], "\"}]}"), 400, "invalid_json"),
        ChatBytes("raw NUL in a string", Bytes("""{"model":"sim-chat","messages":[{"role":"user","content":"a""", [0x00], "\"}]}"), 400, "invalid_json"),
        ChatBytes("UTF-16 body", Encoding.Unicode.GetBytes(Message("\"hi\"")), 400, "invalid_json"),
        // Duplicate keys the gateway acts on.
        ChatCase("model twice", """{"model":"sim-chat","model":"other","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_json"),
        ChatCase("messages twice", """{"model":"sim-chat","messages":[{"role":"user","content":"hi"}],"messages":[]}""", 400, "invalid_json"),
        ChatCase("stream twice", """{"model":"sim-chat","stream":false,"stream":true,"messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_json"),
        // Hostile names.
        ChatCase("a 100 KB model name", $$"""{"model":"{{new string('m', 100_000)}}","messages":[{"role":"user","content":"hi"}]}""", 413, "request_too_large"),
        ChatCase("a 20 KB model name", $$"""{"model":"{{new string('m', 20_000)}}","messages":[{"role":"user","content":"hi"}]}""", 404, "model_not_found"),
        ChatCase("an escape sequence in a model name", """{"model":"\u001b[31mred\u001b]0;pwned\u0007","messages":[{"role":"user","content":"hi"}]}""", 404, "model_not_found"),
        ChatCase("an embedding model for chat", """{"model":"sim-embed","messages":[{"role":"user","content":"hi"}]}""", 400, "invalid_request"),
        // Content types.
        new("form-encoded body", "POST", Chat, Utf8("model=sim-chat&messages=hi"), 400, "invalid_json", ContentType: "application/x-www-form-urlencoded", Traced: true),
        new("JSON sent as text/plain is read", "POST", Chat, Utf8(Message("\"hi\"")), 200, ContentType: "text/plain", Traced: true),
        new("no content type is read", "POST", Chat, Utf8(Message("\"hi\"")), 200, ContentType: null, Traced: true),
        // Tags.
        Tagged("metadata with CR LF", """{"loop":"a\r\nInjected: yes"}"""),
        Tagged("metadata with an escape sequence", """{"loop":"\u001b[2J"}"""),
        Tagged("metadata with a lone surrogate", """{"loop":"\ud800"}"""),
        Tagged("metadata not an object", """["loop"]"""),
        Tagged("metadata value not a string", """{"loop":7}"""),
        Tagged("metadata value too long", $$"""{"loop":"{{new string('x', 300)}}"}"""),
        Tagged("metadata truncated", """{"loop":"""),
        // Identity.
        new("no key", "POST", Chat, Utf8(Message("\"hi\"")), 401, "missing_api_key", As: Caller.None),
        new("a blank key", "POST", Chat, Utf8(Message("\"hi\"")), 401, "invalid_api_key", As: Caller.None, Headers: [("Authorization", "Bearer    ")]),
        new("Basic instead of Bearer", "POST", Chat, Utf8(Message("\"hi\"")), 401, "invalid_api_key", As: Caller.None, Headers: [("Authorization", "Basic dXNlcjpwYXNz")]),
        new("the admin token as an agent key", "POST", Chat, Utf8(Message("\"hi\"")), 401, "invalid_api_key", As: Caller.Admin),
        // Embeddings.
        new("embeddings: input is a number", "POST", Embed, Utf8("""{"model":"sim-embed","input":7}"""), 400, "invalid_request", Traced: true),
        new("embeddings: no input", "POST", Embed, Utf8("""{"model":"sim-embed"}"""), 400, "invalid_request", Traced: true),
        new("embeddings: lone surrogate", "POST", Embed, Utf8("""{"model":"sim-embed","input":"\udfff"}"""), 400, "invalid_json", Traced: true),
        new("embeddings: raw 0xFF", "POST", Embed, Bytes("""{"model":"sim-embed","input":"a""", [0xFF], "\"}"), 400, "invalid_json", Traced: true),
        new("embeddings: nested 100 deep", "POST", Embed, Utf8($$"""{"model":"sim-embed","input":"a","x":{{new string('[', 100)}}{{new string(']', 100)}}}"""), 400, "invalid_json", Traced: true),
        new("embeddings: a chat model", "POST", Embed, Utf8("""{"model":"sim-chat","input":"a"}"""), 400, "invalid_request", Traced: true),
        new("embeddings: truncated", "POST", Embed, Utf8("""{"model":"sim-embed","input":"""), 400, "invalid_json", Traced: true),
        // Other /v1 paths.
        new("GET /v1/models with a body", "GET", "/v1/models", Utf8("{\"x\":1}"), 200),
        new("POST /v1/models", "POST", "/v1/models", Utf8("{}"), 404, "unknown_endpoint"),
        new("GET on chat completions", "GET", Chat, null, 404, "unknown_endpoint"),
        new("an unknown /v1 path", "POST", "/v1/completions", Utf8("{}"), 404, "unknown_endpoint"),
        new("an unknown /v1 path with an escape sequence", "GET", "/v1/%1B%5B31m", null, 404, "unknown_endpoint"),
        // Admin API.
        new("keys: truncated JSON", "POST", "/api/keys", Utf8("""{"agent":"""), 400, "invalid_json", As: Caller.Admin),
        new("keys: empty body", "POST", "/api/keys", Utf8(""), 400, "invalid_json", As: Caller.Admin),
        new("keys: lone surrogate", "POST", "/api/keys", Utf8("""{"agent":"\ud800"}"""), 400, "invalid_json", As: Caller.Admin),
        new("keys: raw 0xFF", "POST", "/api/keys", Bytes("""{"agent":"a""", [0xFF], "\"}"), 400, "invalid_json", As: Caller.Admin),
        new("keys: agent is a number", "POST", "/api/keys", Utf8("""{"agent":5}"""), 400, "invalid_json", As: Caller.Admin),
        new("keys: body is an array", "POST", "/api/keys", Utf8("[]"), 400, "invalid_json", As: Caller.Admin),
        new("keys: nested 100 deep", "POST", "/api/keys", Utf8($$"""{"agent":"tester","x":{{new string('[', 100)}}{{new string(']', 100)}}}"""), 400, "invalid_json", As: Caller.Admin),
        new("keys: an unknown agent with an escape sequence", "POST", "/api/keys", Utf8("""{"agent":"\u001b[31mevil"}"""), 404, "agent_not_found", As: Caller.Admin),
        new("keys: missing agent", "POST", "/api/keys", Utf8("{}"), 400, "invalid_request", As: Caller.Admin),
        new("keys: an agent key", "GET", "/api/keys", null, 403, "agent_key_not_allowed", As: Caller.Agent),
        new("keys: a wrong admin token", "GET", "/api/keys", null, 401, "invalid_admin_token", As: Caller.None, Headers: [("Authorization", "Bearer fla_wrong-wrong-wrong-wrong-wrong-wrong")]),
        new("keys: a blank admin token", "GET", "/api/keys", null, 401, "missing_admin_token", As: Caller.None, Headers: [("Authorization", "Bearer \t")]),
        new("keys: GET with a body", "GET", "/api/keys", Utf8("{\"x\":1}"), 200, As: Caller.Admin),
        new("keys: revoke an unknown id", "DELETE", "/api/keys/key_nope", null, 404, "not_found", As: Caller.Admin),
        new("traces: limit is text", "GET", "/api/traces?limit=abc", null, 400, "invalid_limit", As: Caller.Admin),
        new("traces: limit is 0", "GET", "/api/traces?limit=0", null, 400, "invalid_limit", As: Caller.Admin),
        new("traces: limit is huge", "GET", "/api/traces?limit=99999999999999999999", null, 400, "invalid_limit", As: Caller.Admin),
        new("traces: since is not a time", "GET", "/api/traces?since=yesterday", null, 400, "invalid_since", As: Caller.Admin),
        new("traces: an id with an escape sequence", "GET", "/api/traces/%1B%5D0%3Bx%07", null, 404, "not_found", As: Caller.Admin),
        new("cost: by is unknown", "GET", "/api/cost?by=colour", null, 400, "invalid_by", As: Caller.Admin),
        new("cost: until is not a time", "GET", "/api/cost?until=later", null, 400, "invalid_until", As: Caller.Admin),
        new("alerts: limit is negative", "GET", "/api/alerts?limit=-1", null, 400, "invalid_limit", As: Caller.Admin),
        new("an unknown admin path", "GET", "/api/nope", null, 404, "unknown_endpoint", As: Caller.Admin),
    ];

    [Fact]
    public void The_corpus_covers_at_least_fifty_cases() => Cases.Length.ShouldBeGreaterThanOrEqualTo(50);

    [Fact]
    public async Task Every_bad_input_gets_its_status_and_a_clean_error_the_server_keeps_serving_and_no_trace_is_lost()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);
        using var anonymous = new HttpClient { BaseAddress = host.Server.Address, Timeout = TimeSpan.FromSeconds(30) };
        var first = await GoodCallAsync(host);
        var failures = new List<string>();
        foreach (var c in Cases)
        {
            try
            {
                await CheckAsync(host, anonymous, c);
            }
            catch (Exception e) when (e is ShouldAssertException or JsonException or KeyNotFoundException or InvalidOperationException or HttpRequestException)
            {
                failures.Add($"{c.Name}: {e.Message}");
            }
        }

        failures.ShouldBeEmpty(string.Join("\n\n", failures));
        var last = await GoodCallAsync(host);

        // Every call by the agent to a model endpoint is in the store: the two good ones and each traced case.
        var expected = 2 + Cases.Count(c => c.Traced);
        var traces = await host.TracesAsync(expected);
        traces.Length.ShouldBe(expected);
        traces.Select(t => t.GetProperty("id").GetString()).ShouldContain(first);
        traces.Select(t => t.GetProperty("id").GetString()).ShouldContain(last);
        foreach (var trace in traces)
        {
            trace.GetRawText().ShouldNotContain("\\u001B", Shouldly.Case.Insensitive);
            (trace.TryGetProperty("requested_model", out var model) ? model.GetString()!.Length : 0).ShouldBeLessThan(200);
        }
    }

    private static async Task CheckAsync(GatewayHost host, HttpClient anonymous, Case c)
    {
        using var request = new HttpRequestMessage(new HttpMethod(c.Method), c.Path);
        if (c.Body is not null)
        {
            request.Content = new ByteArrayContent(c.Body);
            request.Content.Headers.ContentType = c.ContentType is null ? null : MediaTypeHeaderValue.Parse(c.ContentType);
        }

        foreach (var (name, value) in c.Headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var client = c.As switch { Caller.Agent => host.Http, Caller.Admin => host.Admin, _ => anonymous };
        if (c.As == Caller.Admin && c.Path.StartsWith("/v1/", StringComparison.Ordinal))
        {
            client = anonymous;
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", GatewayHost.AdminToken);
        }

        using var response = await client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        ((int)response.StatusCode).ShouldBe(c.Status, Shorten(body));
        if (c.Code is not null)
        {
            response.Content.Headers.ContentType?.MediaType.ShouldBe("application/json");
            using var json = JsonDocument.Parse(body);
            var error = json.RootElement.GetProperty("error");
            if (c.Path.StartsWith(Messages, StringComparison.Ordinal) && c.Method == "POST")
            {
                // Anthropic's shape: {"type":"error","error":{"type","message"}}; Flotilla's code rides in a header.
                json.RootElement.GetProperty("type").GetString().ShouldBe("error");
                response.Headers.GetValues("X-Flotilla-Error-Code").Single().ShouldBe(c.Code, Shorten(body));
            }
            else
            {
                error.GetProperty("code").GetString().ShouldBe(c.Code, Shorten(body));
            }

            error.GetProperty("type").GetString().ShouldNotBeNullOrEmpty();
            var message = error.GetProperty("message").GetString()!;
            message.Length.ShouldBeInRange(10, 1_000, Shorten(message));
            message.ShouldNotContain("\u001b");
            message.ShouldNotContain("\u0007");
            message.ShouldNotContain("\0");
        }

        using var health = await anonymous.GetAsync("/healthz", Ct);
        health.StatusCode.ShouldBe(HttpStatusCode.OK, "the server stopped serving");
    }

    private static async Task<string> GoodCallAsync(GatewayHost host)
    {
        using var response = await host.PostChatAsync(Message("\"hello\""));
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return ResilienceTests.Header(response, "X-Flotilla-Trace-Id");
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "…";
}
