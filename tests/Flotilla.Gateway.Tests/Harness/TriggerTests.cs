using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Harness.Triggers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Harness;

/// <summary>Schedules on a fake clock (beats, concurrency, beats missed while down) and signed webhooks start runs.</summary>
public sealed class TriggerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(string trigger) => $$"""
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - name: scripted
              provider: sim
              script:
                - { text: "Checked the queue." }
        ---
        agent:
          name: nightly
          owner: ops
          model: scripted
          trigger: {{trigger}}
        """;

    private static async Task<JsonElement[]> RunsAsync(GatewayHost host) =>
        [.. (await host.Admin.GetFromJsonAsync<JsonElement>("/api/runs?agent=nightly", Ct)).GetProperty("data").EnumerateArray()];

    private static Task BeatAsync(GatewayHost host) =>
        host.Server.Services.GetRequiredService<RunScheduler>().BeatAsync(Ct);

    [Fact]
    public async Task A_schedule_starts_one_run_per_beat_in_its_time_zone()
    {
        // 05:59:30 in Berlin (UTC+1 in December); the schedule is 06:00 Berlin time on weekdays.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 4, 59, 30, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Fleet("""{ schedule: "0 6 * * 1-5", timezone: Europe/Berlin, input: "Triage the new issues." }"""), time);
        await BeatAsync(host);
        (await RunsAsync(host)).ShouldBeEmpty();

        time.Advance(TimeSpan.FromSeconds(31));
        await BeatAsync(host);
        await BeatAsync(host);

        var runs = await RunsAsync(host);
        var run = runs.ShouldHaveSingleItem();
        run.GetProperty("trigger").GetString().ShouldBe("schedule");
        run.GetProperty("input").GetString().ShouldBe("Triage the new issues.");
    }

    [Fact]
    public async Task Beats_missed_while_down_are_skipped_or_answered_once_as_declared()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 30, TimeSpan.Zero));
        await using (var host = await GatewayHost.StartAsync(Fleet("""{ schedule: "0 * * * *" }"""), time))
        {
            await BeatAsync(host);
            await host.StopAsync();
            time.Advance(TimeSpan.FromHours(3));
            await host.StartAgainAsync();
            await BeatAsync(host);
            var skipped = await RunsAsync(host);
            skipped.ShouldBeEmpty("three beats were missed and the policy is skip: " + string.Join(", ", skipped.Select(r => r.ToString())));
        }

        await using (var host = await GatewayHost.StartAsync(Fleet("""{ schedule: "0 * * * *", missed: run_once }"""), time))
        {
            await BeatAsync(host);
            await host.StopAsync();
            time.Advance(TimeSpan.FromHours(3));
            await host.StartAgainAsync();
            await BeatAsync(host);
            await BeatAsync(host);
            var run = (await RunsAsync(host)).ShouldHaveSingleItem("three missed beats are answered with one run");
            run.GetProperty("trigger").GetString().ShouldBe("schedule (missed)");
        }
    }

    [Fact]
    public async Task A_beat_while_a_run_is_not_over_is_skipped()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 30, TimeSpan.Zero));
        // The model takes ten minutes to answer: the run is still going when the next beats come.
        await using var host = await GatewayHost.StartAsync(Fleet("""{ schedule: "* * * * *" }""").Replace("- { name: sim, type: simulated }",
            "- { name: sim, type: simulated, simulate: { latency_ms: 600000 } }"), time);
        await BeatAsync(host);
        time.Advance(TimeSpan.FromMinutes(1));
        await BeatAsync(host);
        var first = (await RunsAsync(host)).ShouldHaveSingleItem();

        time.Advance(TimeSpan.FromMinutes(1));
        await BeatAsync(host);
        var all = await RunsAsync(host);
        all.Length.ShouldBe(1, string.Join(", ", all.Select(r => r.ToString())));
    }

    [Fact]
    public async Task A_signed_webhook_starts_a_run_and_anything_else_is_a_plain_404()
    {
        const string Variable = "FLOTILLA_TEST_WEBHOOK_SECRET";
        Environment.SetEnvironmentVariable(Variable, "whsec-0123456789abcdef");
        try
        {
            await using var host = await GatewayHost.StartAsync(Fleet($$"""{ webhook: true, webhook_secret: "${env:{{Variable}}}" }"""));
            var body = Encoding.UTF8.GetBytes("""{"input":"A customer reported a bug."}""");

            using var signed = await PostHookAsync(host, "nightly", body, WebhookTrigger.Sign(body, "whsec-0123456789abcdef"));
            using var forged = await PostHookAsync(host, "nightly", body, WebhookTrigger.Sign(body, "wrong-secret"));
            using var unsigned = await PostHookAsync(host, "nightly", body, null);
            using var unknown = await PostHookAsync(host, "nobody", body, WebhookTrigger.Sign(body, "whsec-0123456789abcdef"));

            signed.StatusCode.ShouldBe(HttpStatusCode.Accepted, await signed.Content.ReadAsStringAsync(Ct));
            forged.StatusCode.ShouldBe(HttpStatusCode.NotFound);
            unsigned.StatusCode.ShouldBe(HttpStatusCode.NotFound);
            unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
            var runs = await RunsAsync(host);
            var run = runs.ShouldHaveSingleItem(string.Join(", ", runs.Select(r => r.ToString())));
            run.GetProperty("trigger").GetString().ShouldBe("webhook");
            run.GetProperty("input").GetString().ShouldBe("A customer reported a bug.");
        }
        finally
        {
            Environment.SetEnvironmentVariable(Variable, null);
        }
    }

    private static async Task<HttpResponseMessage> PostHookAsync(GatewayHost host, string agent, byte[] body, string? signature)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/hooks/agents/{agent}") { Content = new ByteArrayContent(body) };
        if (signature is not null)
        {
            request.Headers.Add(WebhookTrigger.SignatureHeader, signature);
        }

        using var anonymous = new HttpClient { BaseAddress = host.Server.Address };
        return await anonymous.SendAsync(request, Ct);
    }
}
