using System.Net;
using System.Text;
using Flotilla.Testing;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>What traces keep (caller tags) and what they never keep (keys).</summary>
public sealed class TraceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Caller_metadata_from_the_header_is_on_the_trace()
    {
        await using var host = await GatewayHost.StartAsync("""
            gateway:
              providers:
                - { name: sim, type: simulated }
              models:
                - { name: sim-chat, provider: sim }
            """);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = GatewayHost.JsonContent("""{"model":"sim-chat","messages":[{"role":"user","content":"hello"}]}"""),
        };
        request.Headers.Add("X-Flotilla-Metadata", """{"loop":"triage","run":"7"}""");

        using var response = await host.Http.SendAsync(request, Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var trace = await host.TraceAsync(ResilienceTests.Header(response, "X-Flotilla-Trace-Id"));
        var metadata = trace.GetProperty("metadata");
        metadata.EnumerateObject().Select(p => (p.Name, p.Value.GetString())).ShouldBe([("loop", "triage"), ("run", "7")]);
        trace.GetProperty("operation").GetString().ShouldBe("chat");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_streamed_call_is_priced_from_upstream_usage_and_the_usage_chunk_reaches_only_callers_who_asked(bool includeUsage)
    {
        await using var upstream = await FakeUpstream.StartAsync("upstream");
        await using var host = await GatewayHost.StartAsync($$"""
            gateway:
              providers:
                - { name: upstream, type: openai, base_url: "{{upstream.BaseUrl}}" }
              models:
                - { name: gpt-fake, provider: upstream, price: { input_per_million: 2, output_per_million: 8 } }
            """);
        var options = includeUsage ? ""","stream_options":{"include_usage":true}""" : "";

        using var response = await host.PostChatAsync(
            $$"""{"model":"gpt-fake","stream":true{{options}},"messages":[{"role":"user","content":"hello"}]}""",
            HttpCompletionOption.ResponseHeadersRead);

        response.Content.Headers.ContentType?.MediaType.ShouldBe("text/event-stream");
        var events = await ResilienceTests.ReadEventsAsync(response);
        events[^1].ShouldBe("[DONE]");
        events.Any(e => e.Contains("\"usage\":{", StringComparison.Ordinal)).ShouldBe(includeUsage);
        var upstreamOptions = upstream.Requests.ShouldHaveSingleItem().Json["stream_options"];
        ((bool?)upstreamOptions?["include_usage"]).ShouldBe(true);

        var trace = await host.TraceAsync(ResilienceTests.Header(response, "X-Flotilla-Trace-Id"));
        trace.GetProperty("input_tokens").GetInt64().ShouldBe(FakeUpstream.PromptTokens);
        trace.GetProperty("output_tokens").GetInt64().ShouldBe(FakeUpstream.CompletionTokens);
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe((FakeUpstream.PromptTokens * 2m + FakeUpstream.CompletionTokens * 8m) / 1_000_000m);
        trace.GetProperty("ttft_ms").GetDouble().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task No_key_appears_in_traces_or_in_the_database_even_when_an_upstream_echoes_its_key()
    {
        var variableA = "FLOTILLA_TEST_KEY_A_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
        var variableB = "FLOTILLA_TEST_KEY_B_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
        var keyA = "sk-proj-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
        var keyB = "sk-proj-" + Guid.NewGuid().ToString("N") + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variableA, keyA);
        Environment.SetEnvironmentVariable(variableB, keyB);
        try
        {
            await using var a = await FakeUpstream.StartAsync("a");
            await using var b = await FakeUpstream.StartAsync("b");
            // Upstreams do echo keys in error messages; the gateway must not carry them into its records.
            a.Enqueue(UpstreamBehaviour.Error(503, $"Incorrect API key provided: {keyA}"));
            b.Enqueue(UpstreamBehaviour.Error(400, $"Bad request for Bearer {keyB}"));
            await using var host = await GatewayHost.StartAsync($$"""
                gateway:
                  providers:
                    - { name: a, type: openai, base_url: "{{a.BaseUrl}}", api_key: "${env:{{variableA}}}" }
                    - { name: b, type: openai, base_url: "{{b.BaseUrl}}", api_key: "${env:{{variableB}}}" }
                  models:
                    - { name: model-a, provider: a }
                    - { name: model-b, provider: b }
                  routing:
                    virtual_models:
                      - { name: smart, targets: [ model-a, model-b ] }
                    retries: { attempts: 0 }
                """);

            using (var fellBack = await host.PostChatAsync("""{"model":"smart","messages":[{"role":"user","content":"hello"}]}"""))
            {
                // a: 503 with its key echoed; b: 400 with its key echoed, relayed to the caller as b's own answer.
                fellBack.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            }

            using (var streamed = await host.PostChatAsync("""{"model":"smart","stream":true,"messages":[{"role":"user","content":"hello"}]}"""))
            {
                streamed.StatusCode.ShouldBe(HttpStatusCode.OK);
            }

            using (var bad = await host.PostChatAsync("""{"model":"smart","messages":"nope"}"""))
            {
                bad.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
            }

            a.Requests[0].Header("Authorization").ShouldBe($"Bearer {keyA}");
            b.Requests[0].Header("Authorization").ShouldBe($"Bearer {keyB}");
            await host.TracesAsync(3);

            string[] secrets = [host.AgentKey, $"Bearer {host.AgentKey}", keyA, keyB];
            var traces = await host.Admin.GetStringAsync("/api/traces?limit=100", Ct);
            traces.ShouldContain("model-a");
            foreach (var secret in secrets)
            {
                traces.ShouldNotContain(secret);
            }

            foreach (var file in Directory.GetFiles(host.DataDirectory, "flotilla.db*"))
            {
                var text = Encoding.UTF8.GetString(ReadShared(file));
                foreach (var secret in secrets)
                {
                    text.Contains(secret, StringComparison.Ordinal).ShouldBeFalse($"{Path.GetFileName(file)} holds a secret");
                }
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(variableA, null);
            Environment.SetEnvironmentVariable(variableB, null);
        }
    }

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
