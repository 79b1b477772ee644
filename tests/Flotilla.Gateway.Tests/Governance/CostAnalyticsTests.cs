using System.Net;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>GET /api/cost over real calls: sums by agent, team, model, virtual model and metadata key.</summary>
public sealed class CostAnalyticsTests
{
    /// <summary>One call at $1,000 in and $2,000 out per million tokens, 12 in and 7 out.</summary>
    private const decimal Call = 0.026m;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The maker (tester, qa-team) calls the virtual model <c>smart</c> three times: answered by model-a, answered by model-b
    /// after model-a fails (a fallback), and the first question again (a cache hit on model-a). The checker (outsider,
    /// other-team) calls model-b twice: answered, and refused upstream with 400 (an error).
    /// </summary>
    private static async Task<GatewayHost> RunCallsAsync(FakeUpstream a, FakeUpstream b)
    {
        var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b) + $$"""

              caching: { type: exact }
            ---
            agent:
              name: {{Outsider}}
              owner: {{OtherTeam}}
            """);
        const string Maker = """{"loop":"triage","role":"maker"}""";
        const string Checker = """{"role":"checker"}""";
        var checker = await host.ClientForAsync(Outsider);

        using (await host.Http.PostChatAsync(Chat("smart", "q1"), Maker, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        a.Enqueue(UpstreamBehaviour.Error(503));
        using (await host.Http.PostChatAsync(Chat("smart", "q2"), Maker, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using (var hit = await host.Http.PostChatAsync(Chat("smart", "q1"), Maker, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(hit, "X-Flotilla-Cache").ShouldBe("hit");
        }

        using (await checker.PostChatAsync(Chat("model-b", "q3"), Checker, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        b.Enqueue(UpstreamBehaviour.Error(400, "bad request"));
        using (await checker.PostChatAsync(Chat("model-b", "q4"), Checker, cancellationToken: Ct).ExpectAsync(HttpStatusCode.BadRequest)) { }

        await host.TracesAsync(5);
        return host;
    }

    private static async Task<(Dictionary<string, JsonElement> Rows, JsonElement Total)> CostAsync(GatewayHost host, string by)
    {
        using var response = await host.Admin.GetAsync($"/api/cost?by={by}&since=1h", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var body = await GatewayHost.ReadJsonAsync(response);
        body.GetProperty("by").GetString().ShouldBe(by);
        return (body.GetProperty("data").EnumerateArray().ToDictionary(r => r.GetProperty("value").GetString()!), body.GetProperty("total"));
    }

    private static (long Calls, long Input, long Output, decimal Cost, long CacheHits, long Fallbacks, long Errors) Sums(JsonElement row) => (
        row.GetProperty("calls").GetInt64(), row.GetProperty("input_tokens").GetInt64(), row.GetProperty("output_tokens").GetInt64(),
        row.GetProperty("cost_usd").GetDecimal(), row.GetProperty("cache_hits").GetInt64(), row.GetProperty("fallbacks").GetInt64(),
        row.GetProperty("errors").GetInt64());

    [Fact]
    public async Task Cost_by_agent_team_model_virtual_model_and_metadata_adds_up_the_calls()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        await using var host = await RunCallsAsync(a, b);

        var (agents, total) = await CostAsync(host, "agent");
        agents.Count.ShouldBe(2);
        Sums(agents[GatewayHost.Agent]).ShouldBe((3, 24, 14, 2 * Call, 1, 1, 0));
        Sums(agents[Outsider]).ShouldBe((2, 12, 7, Call, 0, 0, 1));
        Sums(total).ShouldBe((5, 36, 21, 3 * Call, 1, 1, 1));

        var (teams, _) = await CostAsync(host, "team");
        Sums(teams[GatewayHost.Team]).ShouldBe(Sums(agents[GatewayHost.Agent]));
        Sums(teams[OtherTeam]).ShouldBe(Sums(agents[Outsider]));

        // model: the target that answered (the cache hit counts for the model that made the answer).
        var (models, _) = await CostAsync(host, "model");
        Sums(models["model-a"]).ShouldBe((2, 12, 7, Call, 1, 0, 0));
        Sums(models["model-b"]).ShouldBe((3, 24, 14, 2 * Call, 0, 1, 1));

        var (virtualModels, _) = await CostAsync(host, "virtual_model");
        virtualModels.Keys.Order().ShouldBe(["model-b", "smart"]);
        Sums(virtualModels["smart"]).ShouldBe((3, 24, 14, 2 * Call, 1, 1, 0));

        // The maker's cost is separable from the checker's.
        var (roles, _) = await CostAsync(host, "metadata.role");
        Sums(roles["maker"]).ShouldBe((3, 24, 14, 2 * Call, 1, 1, 0));
        Sums(roles["checker"]).ShouldBe((2, 12, 7, Call, 0, 0, 1));

        var (loops, loopTotal) = await CostAsync(host, "metadata.loop");
        loops.Keys.ShouldBe(["triage"]);
        Sums(loopTotal).Calls.ShouldBe(3);
    }

    [Fact]
    public async Task Until_excludes_later_calls()
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        await using var host = await RunCallsAsync(a, b);

        using var response = await host.Admin.GetAsync($"/api/cost?by=agent&since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z", Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        var body = await GatewayHost.ReadJsonAsync(response);
        body.GetProperty("data").GetArrayLength().ShouldBe(0);
        body.GetProperty("total").GetProperty("calls").GetInt64().ShouldBe(0);
    }

    [Theory]
    [InlineData("by=agents", "invalid_by")]
    [InlineData("by=metadata.", "invalid_by")]
    [InlineData("by=agent&since=yesterday", "invalid_since")]
    [InlineData("by=agent&until=soon", "invalid_until")]
    public async Task A_bad_query_is_a_400_json_error(string query, string code)
    {
        await using var a = await FakeUpstream.StartAsync("a");
        await using var b = await FakeUpstream.StartAsync("b");
        await using var host = await GatewayHost.StartAsync(Fleets.PrimaryAndBackup(a, b));

        using var response = await host.Admin.GetAsync($"/api/cost?{query}", Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("application/json");
        var error = await GatewayHost.ErrorAsync(response);
        error.GetProperty("code").GetString().ShouldBe(code);
        error.GetProperty("message").GetString().ShouldNotBeNullOrWhiteSpace();
    }
}
