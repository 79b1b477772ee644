using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>Bad requests get the right status and an OpenAI error that says what is wrong; none of them hurts the server.</summary>
public sealed class BadInputTests
{
    private const string Fleet = """
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - { name: sim-chat, provider: sim }
            - { name: sim-embed, provider: sim, type: embedding }
          limits: { max_request_body_bytes: 2048 }
        """;

    private const string Good = """{"model":"sim-chat","messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Each_bad_request_gets_its_own_status_and_error_and_the_server_keeps_serving_and_keeps_its_traces()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);
        using var before = await host.PostChatAsync(Good);
        before.StatusCode.ShouldBe(HttpStatusCode.OK);
        var firstTraceId = ResilienceTests.Header(before, "X-Flotilla-Trace-Id");

        await ExpectAsync(await host.PostChatAsync("""{"model":"sim-chat","messages":[{"role":"user","content":"hel"""),
            400, "invalid_request_error", "invalid_json", "not valid JSON");
        await ExpectAsync(await host.PostChatAsync("""{"model":"sim-chat","messages":{"role":"user","content":"hello"}}"""),
            400, "invalid_request_error", "invalid_request", "'messages' must be an array", param: "messages");
        await ExpectAsync(await host.PostChatAsync("""{"model":"sim-chat","stream":"yes","messages":[{"role":"user","content":"hello"}]}"""),
            400, "invalid_request_error", "invalid_request", "'stream' must be true or false", param: "stream");
        await ExpectAsync(await host.PostChatAsync("""{"model":"gpt-9","messages":[{"role":"user","content":"hello"}]}"""),
            404, "invalid_request_error", "model_not_found", "sim-chat", param: "model");

        using (var anonymous = new HttpClient { BaseAddress = host.Server.Address })
        {
            await ExpectAsync(await anonymous.PostAsync("/v1/chat/completions", GatewayHost.JsonContent(Good), Ct),
                401, "authentication_error", "missing_api_key", "POST /api/keys");
            using var wrong = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = GatewayHost.JsonContent(Good) };
            wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "flt_not-a-real-key-at-all-000000000");
            await ExpectAsync(await anonymous.SendAsync(wrong, Ct), 401, "authentication_error", "invalid_api_key", "not valid");
        }

        var padding = new string('x', 4096);
        await ExpectAsync(await host.PostChatAsync($$"""{"model":"sim-chat","messages":[{"role":"user","content":"{{padding}}"}]}"""),
            413, "invalid_request_error", "request_too_large", "max_request_body_bytes");
        using (var chunked = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(
                $$"""{"model":"sim-chat","messages":[{"role":"user","content":"{{padding}}"}]}"""))),
        })
        {
            // No Content-Length: the limit is enforced while reading.
            chunked.Headers.TransferEncodingChunked = true;
            await ExpectAsync(await host.Http.SendAsync(chunked, Ct), 413, "invalid_request_error", "request_too_large", "max_request_body_bytes");
        }

        using (var tagged = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = GatewayHost.JsonContent(Good) })
        {
            tagged.Headers.Add("X-Flotilla-Metadata", """{"loop":7}""");
            await ExpectAsync(await host.Http.SendAsync(tagged, Ct), 400, "invalid_request_error", "invalid_metadata", "JSON object of strings");
        }

        using var after = await host.PostChatAsync(Good);
        after.StatusCode.ShouldBe(HttpStatusCode.OK);

        // Two good calls and seven refused ones by a known agent; the anonymous two leave no trace.
        var traces = await host.TracesAsync(9);
        traces.Length.ShouldBe(9);
        traces.ShouldContain(t => t.GetProperty("id").GetString() == firstTraceId);
        traces.Count(t => t.GetProperty("status").GetInt32() == 200).ShouldBe(2);
        traces.Select(t => t.TryGetProperty("error_code", out var code) ? code.GetString() : null).Where(c => c is not null).Order()
            .ShouldBe(["invalid_json", "invalid_metadata", "invalid_request", "invalid_request", "model_not_found", "request_too_large", "request_too_large"]);
    }

    [Fact]
    public async Task An_embedding_model_asked_for_a_chat_completion_is_a_400_that_names_the_mismatch()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);

        await ExpectAsync(await host.PostChatAsync("""{"model":"sim-embed","messages":[{"role":"user","content":"hello"}]}"""),
            400, "invalid_request_error", "invalid_request", "embedding model", param: "model");
    }

    private static async Task ExpectAsync(HttpResponseMessage response, int status, string type, string code, string messagePart, string? param = null)
    {
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(Ct);
            ((int)response.StatusCode).ShouldBe(status, body);
            response.Content.Headers.ContentType?.MediaType.ShouldBe("application/json");
            using var json = JsonDocument.Parse(body);
            var error = json.RootElement.GetProperty("error");
            error.GetProperty("type").GetString().ShouldBe(type);
            error.GetProperty("code").GetString().ShouldBe(code);
            error.GetProperty("message").GetString()!.ShouldContain(messagePart);
            if (param is not null)
            {
                error.GetProperty("param").GetString().ShouldBe(param);
            }
        }
    }
}
