using System.Net;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Gateway.Tests.Fakes;
using Flotilla.Gateway.Tests.Governance;
using Flotilla.Storage.Traces;
using Flotilla.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Traces;

/// <summary>
/// A trace store that refuses writes (a full disk) loses no spend: calls go on, /readyz says not ready and an alert is raised,
/// and after the store recovers, or after a restart, the budget's spend equals what callers were charged.
/// </summary>
public sealed class StoreFailureTests
{
    private const string Policy = """
        budgets:
          - { applies_per: agent, limit: 1000/day }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task While_the_store_fails_calls_succeed_readyz_is_503_an_alert_is_raised_and_recovery_writes_everything_back()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        FailingTraceStore store = null!;
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Policy), services: FailingTraceStore.Install(s => store = s));
        await CallAsync(host, 2);
        await host.TracesAsync(2);

        store.Failing = true;
        await CallAsync(host, 3);
        var notReady = await WaitForReadyzAsync(host, HttpStatusCode.ServiceUnavailable);
        notReady.ShouldContain("traces cannot be stored");
        notReady.ShouldContain("disk is full");
        var alerts = await host.AlertsAsync(a => a.Any(x => x.GetProperty("kind").GetString() == "trace_store_failing"));
        alerts.Count(x => x.GetProperty("kind").GetString() == "trace_store_failing").ShouldBe(1);
        var charged = await host.SpentAsync("agent:tester");
        charged.ShouldBe(5 * PriceyCall);

        store.Failing = false;
        await WaitForReadyzAsync(host, HttpStatusCode.OK);
        (await host.TracesAsync(5)).Length.ShouldBe(5);
        File.Exists(Path.Combine(host.DataDirectory, TraceJournal.FileName)).ShouldBeFalse();
        await host.AlertsAsync(a => a.Any(x => x.GetProperty("kind").GetString() == "trace_store_recovered"));

        await host.RestartAsync();
        (await host.SpentAsync("agent:tester")).ShouldBe(charged);
    }

    [Fact]
    public async Task Stopping_while_the_store_fails_spills_to_the_journal_and_the_next_start_counts_it()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        FailingTraceStore store = null!;
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Policy), services: FailingTraceStore.Install(s => store = s));
        await CallAsync(host, 1);
        await host.TracesAsync(1);

        store.Failing = true;
        await CallAsync(host, 3);
        var charged = await host.SpentAsync("agent:tester");
        charged.ShouldBe(4 * PriceyCall);

        // The process stops with the store still refusing: the traces go to the spill journal, not nowhere.
        await host.StopAsync();
        var journal = Path.Combine(host.DataDirectory, TraceJournal.FileName);
        File.ReadAllLines(journal).Length.ShouldBe(3);
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(journal).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        await host.StartAgainAsync(services: _ => { });
        (await host.SpentAsync("agent:tester")).ShouldBe(charged);
        (await host.TracesNowAsync()).Length.ShouldBe(4);
        File.Exists(journal).ShouldBeFalse();
    }

    private static async Task CallAsync(GatewayHost host, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }
    }

    private static async Task<string> WaitForReadyzAsync(GatewayHost host, HttpStatusCode expected)
    {
        using var anonymous = new HttpClient { BaseAddress = host.Server.Address };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            using var response = await anonymous.GetAsync("/readyz", Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            if (response.StatusCode == expected)
            {
                return text;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"/readyz stayed {(int)response.StatusCode} ({text.Trim()}); expected {(int)expected}");
            }

            await Task.Delay(20, Ct);
        }
    }
}
