using System.Net;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>Budget windows on a fake clock, and spend that survives a restart.</summary>
public sealed class BudgetWindowTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_daily_budget_refuses_until_midnight_utc_says_so_in_retry_after_and_then_starts_afresh()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 23, 58, 30, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 20/day, alert_at: [50] }
            """), time);

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        time.Advance(TimeSpan.FromSeconds(15));
        using (var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests))
        {
            refused.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromSeconds(75));
            (await GatewayHost.ErrorAsync(refused)).GetProperty("message").GetString()!.ShouldContain("resets at 2026-03-15T00:00:00Z");
        }

        time.Advance(TimeSpan.FromSeconds(74));
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests)) { }

        time.Advance(TimeSpan.FromSeconds(1));
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        var budget = (await host.BudgetsAsync())["agent:tester"];
        budget.GetProperty("spent_usd").GetDecimal().ShouldBe(2 * PriceyCall);
        budget.GetProperty("window_start").GetDateTimeOffset().ShouldBe(new DateTimeOffset(2026, 3, 15, 0, 0, 0, TimeSpan.Zero));
        budget.GetProperty("resets_at").GetDateTimeOffset().ShouldBe(new DateTimeOffset(2026, 3, 16, 0, 0, 0, TimeSpan.Zero));
        // The 50 % threshold fires again in the new window: once per window, not once ever.
        var alerts = await host.AlertsAsync(a => Thresholds(a).Length >= 2);
        alerts.Select(a => a.GetProperty("window_start").GetDateTimeOffset().Day).Order().ShouldBe([14, 15]);
    }

    [Fact]
    public async Task A_per_minute_budget_frees_up_at_the_next_minute_and_retry_after_is_the_time_to_it()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 9, 30, 20, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            budgets:
              - { applies_per: agent, limit: 10/minute }
            """), time);

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests))
        {
            refused.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromSeconds(40));
            (await GatewayHost.ErrorAsync(refused)).GetProperty("message").GetString()!.ShouldContain("per minute");
        }

        time.Advance(TimeSpan.FromSeconds(39.5));
        using (var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests))
        {
            refused.Headers.RetryAfter!.Delta.ShouldBe(TimeSpan.FromSeconds(1));
        }

        time.Advance(TimeSpan.FromSeconds(0.5));
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        (await host.SpentAsync("agent:tester")).ShouldBe(PriceyCall);
    }

    [Fact]
    public async Task Spend_and_alerted_thresholds_survive_a_restart()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var webhook = await AlertReceiver.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            budgets:
              - { applies_per: agent, limit: 50/day, alert_at: [75, 90, 100] }
              - { applies_per: metadata.loop, limit: 40/day }
            alerts: { webhook: "{{webhook.Url}}" }
            """), time);
        for (var i = 0; i < 5; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), i < 4 ? """{"loop":"triage"}""" : null, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        await webhook.WaitForAsync(2);
        await host.AlertsAsync(a => a.Count(x => x.GetProperty("delivery").GetString() == "delivered") == 2);
        var before = await host.BudgetsAsync();

        await host.RestartAsync();
        time.Advance(TimeSpan.FromMinutes(5));

        var after = await host.BudgetsAsync();
        after["agent:tester"].GetProperty("spent_usd").GetDecimal().ShouldBe(5 * PriceyCall);
        after["metadata.loop:triage"].GetProperty("spent_usd").GetDecimal().ShouldBe(4 * PriceyCall);
        after["agent:tester"].GetProperty("spent_usd").GetDecimal().ShouldBe(before["agent:tester"].GetProperty("spent_usd").GetDecimal());

        // The key issued before the restart still works; the call that does not fit is refused.
        using (var refused = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests))
        {
            (await GatewayHost.ErrorAsync(refused)).GetProperty("code").GetString().ShouldBe("budget_exceeded");
        }

        // 75 and 90 were alerted before the restart; only 100 is new.
        await webhook.WaitForAsync(3);
        // Every alert published is stored and delivered: no duplicate can still be on its way.
        await host.AlertsSettledAsync();
        webhook.Posts.Select(p => p.GetProperty("threshold").GetInt32()).ShouldBe([75, 90, 100], ignoreOrder: true);
        Thresholds(await host.AlertsAsync(a => Thresholds(a).Length >= 3)).ShouldBe([75, 90, 100]);
        upstream.Requests.Count.ShouldBe(5);
    }
}
