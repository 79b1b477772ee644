using System.Net;
using System.Text.Json;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>Fallback, retries, the time-to-first-token cut-off, broken streams and cooldown, against failing upstreams on real sockets.</summary>
public sealed class ResilienceTests
{
    private const string Hello = """{"model":"smart","messages":[{"role":"user","content":"hello"}]}""";
    private const string HelloStream = """{"model":"smart","stream":true,"messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_503_from_the_primary_is_answered_by_the_backup_and_the_trace_tells_the_story()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Error(503, "overloaded"));
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var answer = await GatewayHost.ReadJsonAsync(response);
        answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString().ShouldBe(b.DefaultText("upstream-b"));
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        Header(response, "X-Flotilla-Attempts").ShouldBe("2");
        var traceId = Header(response, "X-Flotilla-Trace-Id");
        traceId.ShouldNotBeNullOrEmpty();

        var trace = await host.TraceAsync(traceId);
        trace.GetProperty("status").GetInt32().ShouldBe(200);
        trace.GetProperty("requested_model").GetString().ShouldBe("smart");
        trace.GetProperty("final_target").GetString().ShouldBe("model-b");
        trace.GetProperty("fell_back").GetBoolean().ShouldBeTrue();
        trace.GetProperty("agent").GetString().ShouldBe(GatewayHost.Agent);
        trace.GetProperty("team").GetString().ShouldBe(GatewayHost.Team);
        Attempts(trace).ShouldBe([("model-a", 503, "status"), ("model-b", 200, "ok")]);
        trace.GetProperty("attempts")[0].GetProperty("error").GetString()!.ShouldContain("overloaded");
        trace.GetProperty("input_tokens").GetInt64().ShouldBe(FakeUpstream.PromptTokens);
        trace.GetProperty("output_tokens").GetInt64().ShouldBe(FakeUpstream.CompletionTokens);
        // 12 tokens at 1000 USD and 7 at 2000 USD per million.
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe(0.026m);
        a.Requests.Count.ShouldBe(1);
        b.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_429_with_retry_after_zero_is_retried_on_the_same_target()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Error(429, "slow down", ("Retry-After", "0")));
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, retries: "{ attempts: 2, base_delay_ms: 1 }"));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-a");
        Header(response, "X-Flotilla-Attempts").ShouldBe("2");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 429, "status"), ("model-a", 200, "ok")]);
        trace.GetProperty("fell_back").GetBoolean().ShouldBeFalse();
        a.Requests.Count.ShouldBe(2);
        b.Requests.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_500_that_outlasts_the_retries_falls_back_to_the_next_target()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Error(500), UpstreamBehaviour.Error(500), UpstreamBehaviour.Error(500), UpstreamBehaviour.Error(500));
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, retries: "{ attempts: 2, base_delay_ms: 1, max_delay_ms: 20 }"));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        Header(response, "X-Flotilla-Attempts").ShouldBe("4");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 500, "status"), ("model-a", 500, "status"), ("model-a", 500, "status"), ("model-b", 200, "ok")]);
        a.Requests.Count.ShouldBe(3);
    }

    [Fact]
    public async Task A_retry_after_longer_than_the_retry_limit_falls_back_at_once_and_cools_the_target_down()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Error(429, "come back in two minutes", ("Retry-After", "120")));
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, retries: "{ attempts: 2, base_delay_ms: 1, max_delay_ms: 1000 }"));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 429, "status"), ("model-b", 200, "ok")]);
        a.Requests.Count.ShouldBe(1);

        using var targets = await host.Admin.GetAsync("/api/targets", Ct);
        var list = (await GatewayHost.ReadJsonAsync(targets)).GetProperty("data").EnumerateArray().ToDictionary(t => t.GetProperty("model").GetString()!);
        var until = list["model-a"].GetProperty("cooling_until").GetDateTimeOffset();
        until.ShouldBeGreaterThan(DateTimeOffset.UtcNow.AddSeconds(100));
        until.ShouldBeLessThan(DateTimeOffset.UtcNow.AddSeconds(121));
        list["model-b"].TryGetProperty("cooling_until", out _).ShouldBeFalse();

        // While it cools down, calls go straight to the backup.
        using var next = await host.PostChatAsync(Hello);
        Header(next, "X-Flotilla-Target").ShouldBe("model-b");
        a.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_refused_connection_to_the_primary_is_answered_by_the_backup()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        var nowhere = new Uri($"http://127.0.0.1:{FakeUpstream.UnusedPort()}/v1");
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, primaryUrl: nowhere));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 0, "connect_error"), ("model-b", 200, "ok")]);
        trace.GetProperty("attempts")[0].GetProperty("error").GetString()!.ShouldContain("connection refused");
    }

    [Fact]
    public async Task A_primary_that_drops_the_connection_before_answering_is_answered_by_the_backup()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Abort);
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b));

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 0, "connect_error"), ("model-b", 200, "ok")]);
        a.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_primary_that_stalls_before_its_first_event_is_abandoned_at_the_cut_off_and_the_backup_streams_the_answer()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, virtualModelOptions: ", ttft_timeout_ms: 400"));
        await WarmUpAsync(host);
        a.Enqueue(UpstreamBehaviour.StallBeforeFirstEvent);

        using var response = await host.PostChatAsync(HelloStream, HttpCompletionOption.ResponseHeadersRead);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        var events = await ReadEventsAsync(response);
        events[^1].ShouldBe("[DONE]");
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        chunks.ShouldAllBe(c => c.GetProperty("model").GetString() == "upstream-b");
        string.Concat(chunks.Select(ContentOf)).ShouldBe(b.DefaultText("upstream-b"));

        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 0, "ttft_timeout"), ("model-b", 200, "ok")]);
        trace.GetProperty("stream").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task A_primary_that_sends_no_headers_is_abandoned_at_the_cut_off_for_a_whole_answer()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b, virtualModelOptions: ", ttft_timeout_ms: 400"));
        await WarmUpAsync(host);
        a.Enqueue(UpstreamBehaviour.StallBeforeHeaders);

        using var response = await host.PostChatAsync(Hello);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Target").ShouldBe("model-b");
        var answer = await GatewayHost.ReadJsonAsync(response);
        answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString().ShouldBe(b.DefaultText("upstream-b"));
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 0, "ttft_timeout"), ("model-b", 200, "ok")]);
    }

    [Fact]
    public async Task A_stream_that_breaks_midway_ends_with_an_error_event_after_the_chunks_already_sent()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.BreakAfterEvents(3));
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b));

        using var response = await host.PostChatAsync(HelloStream, HttpCompletionOption.ResponseHeadersRead);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var events = await ReadEventsAsync(response);
        events.ShouldNotContain("[DONE]");
        events.Count.ShouldBe(4);
        var chunks = events[..3].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        string.Concat(chunks.Select(ContentOf)).ShouldBe("Hello from ");
        var error = JsonDocument.Parse(events[3]).RootElement.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("stream_interrupted");
        error.GetProperty("type").GetString().ShouldBe("api_error");
        error.GetProperty("message").GetString().ShouldNotBeNullOrEmpty();
        b.Requests.ShouldBeEmpty();

        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        trace.GetProperty("error_code").GetString().ShouldBe("stream_interrupted");
        trace.GetProperty("error").GetString()!.ShouldContain("stopped midway");
        trace.GetProperty("status").GetInt32().ShouldBe(502);
    }

    [Fact]
    public async Task A_garbage_answer_from_the_only_target_is_a_502_and_the_gateway_keeps_serving()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Garbage);
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b));

        using var response = await host.PostChatAsync("""{"model":"model-a","messages":[{"role":"user","content":"hello"}]}""");

        response.StatusCode.ShouldBe(HttpStatusCode.BadGateway);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/json");
        var error = await GatewayHost.ErrorAsync(response);
        error.GetProperty("code").GetString().ShouldBe("all_targets_failed");
        error.GetProperty("type").GetString().ShouldBe("api_error");
        error.GetProperty("message").GetString()!.ShouldContain("model-a");
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 200, "invalid_response")]);

        using var next = await host.PostChatAsync("""{"model":"model-a","messages":[{"role":"user","content":"hello"}]}""");
        next.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_target_that_keeps_failing_is_skipped_while_it_cools_down_and_tried_again_afterwards()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        a.Enqueue(UpstreamBehaviour.Error(503), UpstreamBehaviour.Error(503));
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var host = await GatewayHost.StartAsync(
            Fleets.PrimaryAndBackup(a, b, routingOptions: "cooldown: { failures: 2, seconds: 30 }"), clock);

        for (var call = 0; call < 2; call++)
        {
            using var failedOver = await host.PostChatAsync(Hello);
            Header(failedOver, "X-Flotilla-Target").ShouldBe("model-b");
        }

        a.Requests.Count.ShouldBe(2);

        using var skipped = await host.PostChatAsync(Hello);
        Header(skipped, "X-Flotilla-Target").ShouldBe("model-b");
        Header(skipped, "X-Flotilla-Attempts").ShouldBe("1");
        a.Requests.Count.ShouldBe(2);
        var trace = await host.TraceAsync(Header(skipped, "X-Flotilla-Trace-Id"));
        Attempts(trace).ShouldBe([("model-a", 0, "skipped_cooldown"), ("model-b", 200, "ok")]);
        trace.GetProperty("fell_back").GetBoolean().ShouldBeTrue();

        clock.Advance(TimeSpan.FromSeconds(29));
        using var stillCooling = await host.PostChatAsync(Hello);
        Header(stillCooling, "X-Flotilla-Target").ShouldBe("model-b");
        a.Requests.Count.ShouldBe(2);

        clock.Advance(TimeSpan.FromSeconds(2));
        using var recovered = await host.PostChatAsync(Hello);
        Header(recovered, "X-Flotilla-Target").ShouldBe("model-a");
        a.Requests.Count.ShouldBe(3);
    }

    /// <summary>One call to the backup on its own, so that the cut-off measures the primary's stall and not the first call's start-up.</summary>
    private static async Task WarmUpAsync(GatewayHost host)
    {
        using var warm = await host.PostChatAsync("""{"model":"model-b","stream":true,"messages":[{"role":"user","content":"warm up"}]}""");
        warm.StatusCode.ShouldBe(HttpStatusCode.OK);
        using var whole = await host.PostChatAsync("""{"model":"model-b","messages":[{"role":"user","content":"warm up"}]}""");
        whole.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    internal static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : throw new ShouldAssertException($"no {name} header");

    internal static (string Target, int Status, string Outcome)[] Attempts(JsonElement trace) =>
        [.. trace.GetProperty("attempts").EnumerateArray().Select(a => (a.GetProperty("target").GetString()!, a.GetProperty("status").GetInt32(), a.GetProperty("outcome").GetString()!))];

    /// <summary>The data of every SSE event of a response, in order.</summary>
    internal static async Task<List<string>> ReadEventsAsync(HttpResponseMessage response)
    {
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));
        while (await reader.ReadLineAsync(TestContext.Current.CancellationToken) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(line["data: ".Length..]);
            }
        }

        return events;
    }

    internal static string ContentOf(JsonElement chunk) =>
        chunk.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
        && choices[0].GetProperty("delta").TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
            ? content.GetString()!
            : "";
}
