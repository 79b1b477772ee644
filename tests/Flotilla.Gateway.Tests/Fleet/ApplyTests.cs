using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Gateway.Tests.Governance;
using Flotilla.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Fleet;

/// <summary>
/// Applying a fleet on a running server: atomic, validated in full, stored as a revision, and keeping live state
/// (spend, rate counters, keys); calls in flight finish on the version they started with.
/// </summary>
public sealed class ApplyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Yaml(FakeUpstream upstream, string limit = "100/day", string extra = "", string budgetName = "") =>
        Priced(upstream, $$"""
            budgets:
              - { applies_per: agent, limit: {{limit}}{{budgetName}} }
            rate_limits:
              - { applies_per: agent, requests_per_minute: 20 }
            {{extra}}
            """);

    [Fact]
    public async Task Changing_a_budget_limit_keeps_its_spend_and_the_change_is_a_stored_revision()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Yaml(upstream));
        await CallAsync(host, 9);
        var spent = await host.SpentAsync("agent:tester");
        spent.ShouldBe(9 * PriceyCall);
        (await host.BudgetsAsync())["agent:tester"].GetProperty("used_percent").GetDecimal().ShouldBe(85.5m);

        var applied = await ApplyAsync(host, Yaml(upstream, limit: "200/day"));
        applied.GetProperty("applied").GetBoolean().ShouldBeTrue();
        applied.GetProperty("revision").GetInt32().ShouldBe(2);
        applied.GetProperty("changes").EnumerateArray().Select(c => c.GetString()).ShouldBe(["~ gateway.budgets[0].limit 100/day → 200/day"]);

        var budget = (await host.BudgetsAsync())["agent:tester"];
        budget.GetProperty("spent_usd").GetDecimal().ShouldBe(spent);
        budget.GetProperty("limit_usd").GetDecimal().ShouldBe(200m);

        using var revisions = await host.Admin.GetAsync("/api/fleet/revisions", Ct);
        var list = (await GatewayHost.ReadJsonAsync(revisions)).GetProperty("data").EnumerateArray().ToList();
        list.Select(r => r.GetProperty("revision").GetInt32()).ShouldBe([2, 1]);
        list[0].GetProperty("applied_by").GetString().ShouldBe("admin");
        list[0].GetProperty("sha256").GetString()!.Length.ShouldBe(64);
        list[1].GetProperty("applied_by").GetString().ShouldBe("serve");
    }

    [Fact]
    public async Task A_budget_at_90_percent_stays_at_90_percent_across_an_unrelated_apply_and_rate_counters_carry_over()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream, limit: "95/day").Replace("requests_per_minute: 20", "requests_per_minute: 10", StringComparison.Ordinal);
        await using var host = await GatewayHost.StartAsync(yaml);
        await CallAsync(host, 9);
        (await host.BudgetsAsync())["agent:tester"].GetProperty("used_percent").GetDecimal().ShouldBe(90m);

        (await ApplyAsync(host, yaml + "\n---\nagent: { name: newcomer, owner: other }")).GetProperty("applied").GetBoolean().ShouldBeTrue();
        (await host.BudgetsAsync())["agent:tester"].GetProperty("used_percent").GetDecimal().ShouldBe(90m);

        // Nine requests were counted before the apply; the limit of 10 per minute still knows them.
        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var refused = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.TooManyRequests);
        (await GatewayHost.ErrorAsync(refused)).GetProperty("code").GetString().ShouldBe("rate_limit_exceeded");
    }

    [Fact]
    public async Task A_renamed_budget_starts_a_new_window()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Yaml(upstream));
        await CallAsync(host, 2);
        (await host.SpentAsync("agent:tester")).ShouldBe(2 * PriceyCall);
        await ApplyAsync(host, Yaml(upstream, budgetName: ", name: agent-daily-v2"));
        (await host.BudgetsAsync()).ShouldBeEmpty();
        await CallAsync(host, 1);
        var budget = (await host.BudgetsAsync())["agent:tester"];
        budget.GetProperty("spent_usd").GetDecimal().ShouldBe(PriceyCall);
        budget.GetProperty("rule").GetString().ShouldBe("agent-daily-v2");
    }

    [Fact]
    public async Task A_fleet_pinning_instructions_that_are_not_beside_the_served_fleet_file_is_refused()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream);
        await using var host = await GatewayHost.StartAsync(yaml);
        var pinned = yaml + "\n---\nagent: { name: writer, owner: docs, instructions: ./writer.md@v2 }\n";

        using var refused = await host.Admin.PostAsync("/api/fleet", new StringContent(GatewayHost.WithAgent(pinned), Encoding.UTF8, "application/yaml"), Ct);
        refused.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await GatewayHost.ReadJsonAsync(refused)).GetProperty("errors")[0].GetString()!.ShouldContain("writer@v2.md");

        await File.WriteAllTextAsync(Path.Combine(host.DataDirectory, "writer@v2.md"), "You write.", Ct);
        (await ApplyAsync(host, pinned)).GetProperty("revision").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task An_invalid_fleet_is_refused_with_every_error_and_nothing_changes()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream);
        await using var host = await GatewayHost.StartAsync(yaml);
        var broken = yaml.Replace("limit: 100/day", "limit: lots", StringComparison.Ordinal) + "\n---\nagent: { name: x, owner: t, model: nowhere }\n";

        using var response = await host.Admin.PostAsync("/api/fleet?file=mine.yaml", new StringContent(GatewayHost.WithAgent(broken), Encoding.UTF8, "application/yaml"), Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        var body = await GatewayHost.ReadJsonAsync(response);
        body.GetProperty("error").GetProperty("code").GetString().ShouldBe("invalid_fleet");
        var errors = body.GetProperty("errors").EnumerateArray().Select(e => e.GetString()!).ToList();
        errors.Count.ShouldBe(2);
        errors.ShouldAllBe(e => e.StartsWith("mine.yaml:", StringComparison.Ordinal));

        var current = await FleetAsync(host);
        current.GetProperty("revision").GetInt32().ShouldBe(1);
        current.GetProperty("yaml").GetString().ShouldBe(GatewayHost.WithAgent(yaml));
        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
    }

    [Fact]
    public async Task Removing_an_agent_disables_its_keys_with_a_401_that_says_so_and_adding_it_back_restores_them()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream);
        await using var host = await GatewayHost.StartAsync(yaml);
        var peer = await host.ClientForAsync(Peer);
        using (await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        var withoutPeer = yaml.Replace($"agent:\n  name: {Peer}\n  owner: {GatewayHost.Team}\n---\n", "", StringComparison.Ordinal);
        withoutPeer.ShouldNotBe(yaml);
        (await ApplyAsync(host, withoutPeer)).GetProperty("changes").EnumerateArray().Select(c => c.GetString()).ShouldBe([$"- agent {Peer}"]);
        using (var refused = await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.Unauthorized))
        {
            (await GatewayHost.ErrorAsync(refused)).GetProperty("message").GetString()!.ShouldContain("left the fleet");
        }

        // One-step rollback: revision 1's YAML again.
        using var revision1 = await host.Admin.GetAsync("/api/fleet/revisions/1", Ct);
        var original = (await GatewayHost.ReadJsonAsync(revision1)).GetProperty("yaml").GetString()!;
        original.ShouldBe(GatewayHost.WithAgent(yaml));
        using var rollback = await host.Admin.PostAsync("/api/fleet", new StringContent(original, Encoding.UTF8, "application/yaml"), Ct);
        (await GatewayHost.ReadJsonAsync(rollback)).GetProperty("revision").GetInt32().ShouldBe(3);
        (await FleetAsync(host)).GetProperty("yaml").GetString().ShouldBe(original);
        using (await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
    }

    [Fact]
    public async Task The_same_fleet_again_is_no_change_and_no_new_revision()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream);
        await using var host = await GatewayHost.StartAsync(yaml);
        var result = await ApplyAsync(host, "# reformatted\n" + yaml.Replace("limit: 100/day", "limit: \"100/day\"", StringComparison.Ordinal));
        result.GetProperty("applied").GetBoolean().ShouldBeFalse();
        result.GetProperty("changes").GetArrayLength().ShouldBe(0);
        result.GetProperty("revision").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_dry_run_plans_without_applying()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Yaml(upstream);
        await using var host = await GatewayHost.StartAsync(yaml);
        using var response = await host.Admin.PostAsync("/api/fleet?dry_run=true",
            new StringContent(GatewayHost.WithAgent(Yaml(upstream, limit: "5/day")), Encoding.UTF8, "application/yaml"), Ct);
        var plan = await GatewayHost.ReadJsonAsync(response);
        plan.GetProperty("dry_run").GetBoolean().ShouldBeTrue();
        plan.GetProperty("changes").EnumerateArray().Select(c => c.GetString()).ShouldBe(["~ gateway.budgets[0].limit 100/day → 5/day"]);
        (await FleetAsync(host)).GetProperty("revision").GetInt32().ShouldBe(1);
        (await host.BudgetsAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_call_in_flight_during_an_apply_finishes_on_the_version_it_started_with()
    {
        const string Slow = """
            gateway:
              providers:
                - { name: sim, type: simulated, simulate: { chunk_delay_ms: 40 } }
              models:
                - { name: slow, provider: sim }
            """;
        await using var host = await GatewayHost.StartAsync(Slow);
        var streaming = host.PostChatAsync("""{"model":"slow","stream":true,"messages":[{"role":"user","content":"tell me a long story"}]}""",
            HttpCompletionOption.ResponseHeadersRead);
        using var response = await streaming;
        response.StatusCode.ShouldBe(HttpStatusCode.OK);

        // The model the stream is using leaves the fleet while the stream is running.
        var without = Slow.Replace("slow, provider: sim", "fast, provider: sim", StringComparison.Ordinal);
        (await ApplyAsync(host, without)).GetProperty("applied").GetBoolean().ShouldBeTrue();

        var text = await response.Content.ReadAsStringAsync(Ct);
        text.ShouldContain("data: [DONE]");
        text.ShouldNotContain("\"error\"");
        using var after = await host.PostChatAsync("""{"model":"slow","messages":[{"role":"user","content":"hi"}]}""");
        after.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Answers_cached_before_an_apply_adds_output_guardrails_are_not_served_unchecked_after_it()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var yaml = Priced(upstream, """
            caching: { type: exact, ttl: 1h }
            """);
        await using var host = await GatewayHost.StartAsync(yaml);
        using (var first = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(first, "X-Flotilla-Cache").ShouldBe("miss");
        }

        using (var second = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(second, "X-Flotilla-Cache").ShouldBe("hit");
        }

        await ApplyAsync(host, Priced(upstream, """
            caching: { type: exact, ttl: 1h }
            guardrails:
              llm_output: [pii]
            """));
        using var after = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        Header(after, "X-Flotilla-Cache").ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(2);
    }

    private static async Task CallAsync(GatewayHost host, int count)
    {
        for (var i = 0; i < count; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        }
    }

    /// <summary>Applies <paramref name="yaml"/> with the host's own agent appended, as the host started with it.</summary>
    internal static async Task<JsonElement> ApplyAsync(GatewayHost host, string yaml)
    {
        using var content = new StringContent(GatewayHost.WithAgent(yaml), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/yaml");
        using var response = await host.Admin.PostAsync("/api/fleet", content, Ct);
        var body = await GatewayHost.ReadJsonAsync(response);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, body.GetRawText());
        return body;
    }

    private static async Task<JsonElement> FleetAsync(GatewayHost host)
    {
        using var response = await host.Admin.GetAsync("/api/fleet", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return await GatewayHost.ReadJsonAsync(response);
    }
}
