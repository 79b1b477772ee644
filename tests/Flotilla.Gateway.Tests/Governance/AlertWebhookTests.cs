using System.Net;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>Budget alerts posted to <c>gateway.alerts.webhook</c>: the payload, retries, and a webhook that hangs.</summary>
public sealed class AlertWebhookTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Budget(AlertReceiver webhook) => $$"""
        budgets:
          - { applies_per: agent, limit: 10/day, alert_at: [50] }
        alerts: { webhook: "{{webhook.Url}}" }
        """;

    [Fact]
    public async Task An_alert_is_posted_to_the_webhook_as_json()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var webhook = await AlertReceiver.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Budget(webhook)), time);

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        var post = (await webhook.WaitForAsync(1)).Single();
        post.GetProperty("kind").GetString().ShouldBe("budget_threshold");
        post.GetProperty("applies_per").GetString().ShouldBe("agent");
        post.GetProperty("key").GetString().ShouldBe(GatewayHost.Agent);
        post.GetProperty("threshold").GetInt32().ShouldBe(50);
        post.GetProperty("spent_usd").GetDecimal().ShouldBe(PriceyCall);
        post.GetProperty("limit_usd").GetDecimal().ShouldBe(10m);
        post.GetProperty("window_start").GetDateTimeOffset().ShouldBe(new DateTimeOffset(2026, 3, 14, 0, 0, 0, TimeSpan.Zero));
        post.GetProperty("message").GetString()!.ShouldContain("agent 'tester'");
        var stored = (await host.AlertsAsync(a => a.Any(x => x.GetProperty("delivery").GetString() == "delivered"))).Single();
        stored.GetProperty("id").GetString().ShouldBe(post.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_webhook_that_fails_is_retried_until_it_takes_the_alert()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var webhook = await AlertReceiver.StartAsync(failFirst: 2);
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Budget(webhook)), time);

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        // The backoff (1 s, then 2 s) runs on the gateway's clock: move it on while waiting.
        var posts = await webhook.WaitForAsync(3, tick: () => time.Advance(TimeSpan.FromMilliseconds(500)));
        posts.Select(p => p.GetProperty("id").GetString()).Distinct().Count().ShouldBe(1);
        var stored = await host.AlertsAsync(a => a.Any(x => x.GetProperty("delivery").GetString() == "delivered"),
            tick: () => time.Advance(TimeSpan.FromMilliseconds(500)));
        stored.Single().GetProperty("threshold").GetInt32().ShouldBe(50);
        await host.AlertsSettledAsync();
        webhook.Posts.Count.ShouldBe(3);
    }

    [Fact]
    public async Task A_webhook_that_hangs_never_slows_a_call()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var webhook = await AlertReceiver.StartAsync(hang: true);
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            budgets:
              - { applies_per: agent, limit: 100/day, alert_at: [5, 10, 15, 20, 25, 30] }
            alerts: { webhook: "{{webhook.Url}}" }
            """));
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        await webhook.WaitForAsync(1);

        // Every call crosses a threshold while the webhook holds the earlier posts open. Had a call waited for a post, it
        // could only have finished once the webhook client gave up (5 s), aborting that post: none is aborted yet.
        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }

        webhook.Aborted.ShouldBe(0);
        await webhook.WaitForAsync(4);
        var alerts = await host.AlertsAsync(a => Thresholds(a).Length >= 4);
        alerts.ShouldAllBe(a => a.GetProperty("delivery").GetString() == "pending");
    }
}
