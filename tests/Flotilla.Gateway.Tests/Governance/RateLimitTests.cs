using System.Net;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>Request and token rate limits on the request path, on a fake clock.</summary>
public sealed class RateLimitTests
{
    private static readonly DateTimeOffset MinuteStart = new(2026, 3, 14, 12, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_fourth_call_in_a_minute_is_refused_with_rate_limit_exceeded_and_retry_after()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(MinuteStart);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            rate_limits:
              - { applies_per: agent, requests_per_minute: 3 }
            """), time);

        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        using var refused = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct);

        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        var error = await GatewayHost.ErrorAsync(refused);
        error.GetProperty("code").GetString().ShouldBe("rate_limit_exceeded");
        error.GetProperty("type").GetString().ShouldBe("rate_limit_error");
        error.GetProperty("message").GetString()!.ShouldContain("3 requests per minute for agent 'tester'");
        refused.Headers.RetryAfter!.Delta!.Value.ShouldBeGreaterThan(TimeSpan.Zero);
        upstream.Requests.Count.ShouldBe(3);
        var trace = await host.TraceAsync(Header(refused, "X-Flotilla-Trace-Id"));
        trace.GetProperty("error_code").GetString().ShouldBe("rate_limit_exceeded");

        // Other agents have their own count.
        var peer = await host.ClientForAsync(Peer);
        using (await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
    }

    [Fact]
    public async Task The_limit_frees_up_as_the_window_slides_exactly_when_retry_after_says()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(MinuteStart);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            rate_limits:
              - { applies_per: agent, requests_per_minute: 3 }
            """), time);
        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        using var refused = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        var wait = refused.Headers.RetryAfter!.Delta!.Value;
        // Three calls at the start of a minute: in the next minute they weigh 3 × (1 − elapsed), so one more fits a third of the way in.
        wait.ShouldBe(TimeSpan.FromSeconds(80));

        time.Advance(wait - TimeSpan.FromSeconds(1));
        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests)) { }

        time.Advance(TimeSpan.FromSeconds(1));
        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests)) { }

        // Two windows on, the old calls weigh nothing.
        time.Advance(TimeSpan.FromMinutes(2));
        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }
    }

    [Fact]
    public async Task Twenty_parallel_calls_with_a_limit_of_five_let_exactly_five_through()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(MinuteStart);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            rate_limits:
              - { applies_per: team, requests_per_minute: 5 }
            """), time);

        var statuses = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct);
            return response.StatusCode;
        }));

        statuses.Count(s => s == HttpStatusCode.OK).ShouldBe(5);
        statuses.Count(s => s == HttpStatusCode.TooManyRequests).ShouldBe(15);
        upstream.Requests.Count.ShouldBe(5);
    }

    [Fact]
    public async Task Tokens_per_minute_count_the_estimate_before_a_call_and_the_actual_usage_after()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(MinuteStart);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            rate_limits:
              - { applies_per: agent, tokens_per_minute: 100 }
            """), time);
        // About 8 input tokens estimated plus max_tokens 60: ~68 reserved; the fake then reports 19 used.
        var body = Chat("cheap", maxTokens: 60);

        // A request whose max_tokens alone is over the limit is refused before it is sent.
        using (await host.Http.PostChatAsync(Chat("cheap", maxTokens: 200), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests)) { }

        using (await host.Http.PostChatAsync(body, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        // 19 actual + 68 estimated fits in 100 only because the first estimate was replaced by the usage.
        using (await host.Http.PostChatAsync(body, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        // 38 + 68 does not.
        using var refused = await host.Http.PostChatAsync(body, cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        (await GatewayHost.ErrorAsync(refused)).GetProperty("message").GetString()!.ShouldContain("100 tokens per minute");
        upstream.Requests.Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_call_over_the_token_limit_by_its_byte_length_but_not_by_its_count_goes_through_and_a_refusal_names_the_count()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(MinuteStart);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            rate_limits:
              - { applies_per: agent, tokens_per_minute: 300 }
            """), time);

        // 500 bytes of text is over 300 by the cheap bound (a byte per token), ~110 tokens by the tokenizer: it fits.
        var fits = Chat("cheap", content: string.Concat(Enumerable.Repeat("word ", 100)));
        using (await host.Http.PostChatAsync(fits, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        upstream.Requests.Count.ShouldBe(1);

        // Over the limit by its count too: refused, and the message gives the tokenizer's figure, not the bound.
        var tooLong = Chat("cheap", content: string.Concat(Enumerable.Repeat("word ", 400)));
        var counted = TokenEstimator.EstimateInput(ChatRequest.ParseChat(System.Text.Encoding.UTF8.GetBytes(tooLong))) + 10;
        counted.ShouldBeLessThan(500);
        using var refused = await host.Http.PostChatAsync(tooLong, cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        (await GatewayHost.ErrorAsync(refused)).GetProperty("message").GetString()!.ShouldContain($"estimated at {counted} tokens");
        upstream.Requests.Count.ShouldBe(1);
    }
}
