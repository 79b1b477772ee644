using System.Net;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>Budgets on the request path: refusals, alerts, rule matching, audit mode and concurrent reservations.</summary>
public sealed class BudgetTests
{
    private const string AgentBudget = """
        budgets:
          - { applies_per: agent, limit: 50/day, alert_at: [75, 90, 100] }
        """;

    /// <summary>Noon UTC: far from any window boundary.</summary>
    private static readonly DateTimeOffset Noon = new(2026, 3, 14, 12, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_runaway_loop_is_stopped_with_budget_exceeded_after_alerts_at_75_90_and_100_percent()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(Noon);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, AgentBudget), time);

        // $9.50 a call: 9.5, 19, 28.5, 38 (76 %), 47.5 (95 %); the sixth cannot fit its reservation.
        for (var i = 0; i < 5; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        Thresholds(await host.AlertsAsync(a => Thresholds(a).Length >= 2)).ShouldBe([75, 90]);

        using var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct);

        refused.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        var error = await GatewayHost.ErrorAsync(refused);
        error.GetProperty("code").GetString().ShouldBe("budget_exceeded");
        error.GetProperty("type").GetString().ShouldBe("rate_limit_error");
        var message = error.GetProperty("message").GetString()!;
        message.ShouldContain("agent 'tester'");
        message.ShouldContain("$47.5 of $50");
        message.ShouldContain("resets at 2026-03-15T00:00:00Z");
        // Twelve hours to midnight UTC.
        refused.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromHours(12));
        upstream.Requests.Count.ShouldBe(5);

        var alerts = await host.AlertsAsync(a => Thresholds(a).Length >= 3);
        Thresholds(alerts).ShouldBe([75, 90, 100]);
        var full = alerts.Single(a => a.GetProperty("threshold").GetInt32() == 100);
        full.GetProperty("applies_per").GetString().ShouldBe("agent");
        full.GetProperty("key").GetString().ShouldBe(GatewayHost.Agent);
        full.GetProperty("spent_usd").GetDecimal().ShouldBe(47.5m);
        full.GetProperty("limit_usd").GetDecimal().ShouldBe(50m);
        full.GetProperty("message").GetString()!.ShouldContain("refused");
        alerts.Single(a => a.GetProperty("threshold").GetInt32() == 75).GetProperty("spent_usd").GetDecimal().ShouldBe(38m);

        var trace = await host.TraceAsync(Header(refused, "X-Flotilla-Trace-Id"));
        trace.GetProperty("status").GetInt32().ShouldBe(429);
        trace.GetProperty("error_code").GetString().ShouldBe("budget_exceeded");
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe(0m);

        (await host.BudgetsAsync())["agent:tester"].ShouldSatisfyAllConditions(
            b => b.GetProperty("spent_usd").GetDecimal().ShouldBe(47.5m),
            b => b.GetProperty("reserved_usd").GetDecimal().ShouldBe(0m),
            b => b.GetProperty("limit_usd").GetDecimal().ShouldBe(50m),
            b => b.GetProperty("window").GetString().ShouldBe("day"),
            b => b.GetProperty("resets_at").GetDateTimeOffset().ShouldBe(new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero)));
    }

    [Fact]
    public async Task A_call_that_fits_by_its_token_count_is_reserved_on_it_even_when_its_byte_length_would_not_fit()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(Noon);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, AgentBudget), time);

        // 100 bytes of text and max_tokens 10 at $0.50 a token: ~$58 by the cheap bound (over the $50 budget), ~$19 by the
        // tokenizer's count. The call goes through, and no 100 % alert or refusal note is raised on the way.
        using (await host.Http.PostChatAsync(Chat(content: string.Concat(Enumerable.Repeat("word ", 20))), cancellationToken: Ct)
            .ExpectAsync(HttpStatusCode.OK)) { }

        upstream.Requests.Count.ShouldBe(1);
        (await host.SpentAsync("agent:tester")).ShouldBe(PriceyCall);
        (await host.BudgetsAsync())["agent:tester"].GetProperty("reserved_usd").GetDecimal().ShouldBe(0m);
        using var alerts = await host.Admin.GetAsync("/api/alerts?limit=1000", Ct);
        (await GatewayHost.ReadJsonAsync(alerts)).GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task Each_threshold_is_alerted_once_per_window_however_many_calls_cross_or_hit_it()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var webhook = await AlertReceiver.StartAsync();
        var time = new FakeTimeProvider(Noon);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            budgets:
              - { applies_per: agent, limit: 50/day, alert_at: [75, 90, 100] }
              - { applies_per: team, limit: 500/day, alert_at: [1] }
            alerts: { webhook: "{{webhook.Url}}" }
            """), time);

        for (var i = 0; i < 5; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        for (var i = 0; i < 4; i++)
        {
            using var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        }

        // A marker last: the team's 1 % alert is published after everything above, and alerts are handled in order.
        using (var marker = await (await host.ClientForAsync(Outsider)).PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
        }

        await webhook.WaitForAsync(5);
        // Every alert published is stored and delivered: no duplicate can still be on its way.
        await host.AlertsSettledAsync();
        var posts = webhook.Posts;
        posts.Select(p => (p.GetProperty("key").GetString(), p.GetProperty("threshold").GetInt32())).Order().ShouldBe(
            [("other-team", 1), ("qa-team", 1), ("tester", 75), ("tester", 90), ("tester", 100)]);
    }

    [Fact]
    public async Task Team_model_and_metadata_rules_each_count_the_calls_they_match()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: team, limit: 1000/day }
              - { applies_per: model, limit: 1000/day }
              - { applies_per: metadata.loop, limit: 1000/day }
            """));
        var peer = await host.ClientForAsync(Peer);
        var outsider = await host.ClientForAsync(Outsider);

        using (await host.Http.PostChatAsync(Chat(), """{"loop":"triage"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await peer.PostChatAsync(Chat(), """{"loop":"triage","role":"checker"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await outsider.PostChatAsync(Chat(), """{"loop":"release"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await outsider.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        var budgets = await host.BudgetsAsync();
        budgets.Keys.Order().ShouldBe(["metadata.loop:release", "metadata.loop:triage", "model:cheap", "model:pricey", "team:other-team", "team:qa-team"]);
        budgets["team:qa-team"].GetProperty("spent_usd").GetDecimal().ShouldBe(2 * PriceyCall);
        budgets["team:other-team"].GetProperty("spent_usd").GetDecimal().ShouldBe(PriceyCall + 0.026m);
        budgets["model:pricey"].GetProperty("spent_usd").GetDecimal().ShouldBe(3 * PriceyCall);
        budgets["model:cheap"].GetProperty("spent_usd").GetDecimal().ShouldBe(0.026m);
        budgets["metadata.loop:triage"].GetProperty("spent_usd").GetDecimal().ShouldBe(2 * PriceyCall);
        // The untagged call is not subject to the metadata rule.
        budgets["metadata.loop:release"].GetProperty("spent_usd").GetDecimal().ShouldBe(PriceyCall);
        budgets.Values.ShouldAllBe(b => b.GetProperty("reserved_usd").GetDecimal() == 0m);
    }

    [Fact]
    public async Task A_call_is_refused_by_the_one_rule_it_exceeds_and_calls_outside_that_rule_go_through()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 1000/day }
              - { applies_per: metadata.loop, limit: 15/day }
            """));

        using (await host.Http.PostChatAsync(Chat(), """{"loop":"triage"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var refused = await host.Http.PostChatAsync(Chat(), """{"loop":"triage"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        var error = await GatewayHost.ErrorAsync(refused);
        error.GetProperty("code").GetString().ShouldBe("budget_exceeded");
        error.GetProperty("message").GetString()!.ShouldContain("metadata.loop 'triage'");

        using (await host.Http.PostChatAsync(Chat(), """{"loop":"release"}""", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        var budgets = await host.BudgetsAsync();
        // The refused call holds nothing back on the rule that would have let it through.
        budgets["agent:tester"].GetProperty("spent_usd").GetDecimal().ShouldBe(3 * PriceyCall);
        budgets["agent:tester"].GetProperty("reserved_usd").GetDecimal().ShouldBe(0m);
        budgets["metadata.loop:triage"].GetProperty("spent_usd").GetDecimal().ShouldBe(PriceyCall);
        upstream.Requests.Count.ShouldBe(3);
    }

    [Fact]
    public async Task Audit_mode_lets_calls_through_and_records_would_block_alerts_and_a_policy_note()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 10/day, mode: audit }
            """));

        using (var first = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            (await host.TraceAsync(Header(first, "X-Flotilla-Trace-Id"))).TryGetProperty("policy", out _).ShouldBeFalse();
        }

        using var second = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var third = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        var trace = await host.TraceAsync(Header(second, "X-Flotilla-Trace-Id"));
        var notes = trace.GetProperty("policy").EnumerateArray().Select(n => n.GetString()!).ToList();
        notes.ShouldContain(n => n.StartsWith("budget audit: would have refused", StringComparison.Ordinal) && n.Contains("agent 'tester'"));
        var thirdTrace = await host.TraceAsync(Header(third, "X-Flotilla-Trace-Id"));
        thirdTrace.GetProperty("policy").EnumerateArray().ShouldContain(n => n.GetString()!.StartsWith("budget audit: would have refused", StringComparison.Ordinal));
        // Every would-be refusal is on its trace; the alert (and its webhook) fires once per rule, key and window.
        var alerts = await host.AlertsAsync(a => a.Any(x => x.GetProperty("kind").GetString() == "budget_would_block"));
        alerts.Count(a => a.GetProperty("kind").GetString() == "budget_would_block").ShouldBe(1);
        alerts.Where(a => a.GetProperty("kind").GetString() == "budget_would_block").ShouldAllBe(a =>
            a.GetProperty("key").GetString() == GatewayHost.Agent && a.GetProperty("message").GetString()!.Contains("would have been refused"));
        (await host.SpentAsync("agent:tester")).ShouldBe(3 * PriceyCall);
        (await host.BudgetsAsync())["agent:tester"].GetProperty("mode").GetString().ShouldBe("audit");
        upstream.Requests.Count.ShouldBe(3);
    }

    [Fact]
    public async Task Fifty_parallel_calls_against_a_budget_overshoot_it_by_at_most_one_call()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, AgentBudget));

        var calls = Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct);
            return response.StatusCode;
        });
        var statuses = await Task.WhenAll(calls);

        statuses.ShouldAllBe(s => s == HttpStatusCode.OK || s == HttpStatusCode.TooManyRequests);
        // Each call reserves about $9 up front, so five fit in $50 whatever the interleaving, and they cost $47.50.
        statuses.Count(s => s == HttpStatusCode.OK).ShouldBe(5);
        var spent = await host.SpentAsync("agent:tester");
        spent.ShouldBe(5 * PriceyCall);
        spent.ShouldBeLessThanOrEqualTo(50m + PriceyCall);
        var traces = await host.TracesAsync(50);
        traces.Sum(t => t.GetProperty("cost_usd").GetDecimal()).ShouldBe(spent);
        upstream.Requests.Count.ShouldBe(5);
    }

    [Fact]
    public async Task Fifty_parallel_calls_against_a_nearly_exhausted_budget_let_exactly_one_through()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, AgentBudget));
        for (var i = 0; i < 4; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        var statuses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct);
            return response.StatusCode;
        }));

        statuses.Count(s => s == HttpStatusCode.OK).ShouldBe(1);
        (await host.SpentAsync("agent:tester")).ShouldBe(5 * PriceyCall);
    }

    [Fact]
    public async Task A_streamed_call_is_charged_when_its_stream_ends_and_a_refused_one_gets_json_before_any_event()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 15/day }
            """));

        using (var streamed = await host.Http.PostChatAsync(Chat(stream: true), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            (await streamed.Content.ReadAsStringAsync(Ct)).ShouldEndWith("data: [DONE]\n\n");
        }

        (await host.SpentAsync("agent:tester")).ShouldBe(PriceyCall);
        using var refused = await host.Http.PostChatAsync(Chat(stream: true), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        refused.Content.Headers.ContentType!.MediaType.ShouldBe("application/json");
        (await GatewayHost.ErrorAsync(refused)).GetProperty("code").GetString().ShouldBe("budget_exceeded");
        upstream.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_cache_hit_costs_nothing_and_is_served_even_when_the_budget_is_spent()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact }
            budgets:
              - { applies_per: agent, limit: 15/day }
            """));

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await host.Http.PostChatAsync(Chat(content: "another question"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests)) { }
        using var hit = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(hit, "X-Flotilla-Cache").ShouldBe("hit");
        (await host.SpentAsync("agent:tester")).ShouldBe(PriceyCall);
        upstream.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_failed_call_releases_its_reservation_and_costs_nothing()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        upstream.Enqueue(UpstreamBehaviour.Error(500), UpstreamBehaviour.Error(500));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 10/day }
            """));

        for (var i = 0; i < 2; i++)
        {
            using var failed = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct);
            failed.StatusCode.ShouldBe(HttpStatusCode.BadGateway);
        }

        (await host.BudgetsAsync())["agent:tester"].ShouldSatisfyAllConditions(
            b => b.GetProperty("spent_usd").GetDecimal().ShouldBe(0m),
            b => b.GetProperty("reserved_usd").GetDecimal().ShouldBe(0m));
        using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
    }
}
