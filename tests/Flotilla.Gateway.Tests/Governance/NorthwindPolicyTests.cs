using System.Net;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>The seed fleet's gateway policy (examples/northwind/fleet.yaml) serving calls.</summary>
public sealed class NorthwindPolicyTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// The gateway document of the Northwind fleet as written, except that the openai provider points at a fake upstream
    /// (no key, no network).
    /// </summary>
    private static string NorthwindGateway(FakeUpstream upstream)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "examples", "northwind", "fleet.yaml")))
        {
            directory = directory.Parent;
        }

        directory.ShouldNotBeNull("examples/northwind/fleet.yaml was not found above the test directory");
        var text = File.ReadAllText(Path.Combine(directory.FullName, "examples", "northwind", "fleet.yaml"));
        var gateway = text.Split("\n---", 2)[0];
        const string OpenAI = """- { name: openai, type: openai, base_url: https://api.openai.com/v1, api_key: "${env:OPENAI_API_KEY}" }""";
        gateway.ShouldContain(OpenAI);
        gateway.ShouldContain("caching: { type: semantic, similarity_threshold: 0.9, namespace_per: agent }");
        gateway.ShouldContain("- { applies_per: agent, limit: 50/day, alert_at: [75,90,100] }");
        return gateway.Replace(OpenAI, $$"""- { name: openai, type: openai, base_url: "{{upstream.BaseUrl}}" }""", StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_call_goes_through_the_northwind_policy_is_charged_to_the_daily_budget_and_a_rephrasing_hits_the_semantic_cache()
    {
        await using var upstream = await FakeUpstream.StartAsync("openai");
        await using var host = await GatewayHost.StartAsync(NorthwindGateway(upstream));
        const string Question = """{"model":"triage-default","messages":[{"role":"user","content":"Triage this bug report: the login page times out after the latest release."}]}""";
        const string Rephrased = """{"model":"triage-default","messages":[{"role":"user","content":"triage this bug report - the login page times out after the latest release"}]}""";

        using var first = await host.Http.PostChatAsync(Question, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        Header(first, "X-Flotilla-Target").ShouldBe("gpt-4o-mini");
        Header(first, "X-Flotilla-Cache").ShouldBe("miss");
        (await ContentAsync(first)).ShouldBe(upstream.DefaultText("gpt-4o-mini"));

        using var second = await host.Http.PostChatAsync(Rephrased, cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        Header(second, "X-Flotilla-Cache").ShouldBe("hit");
        upstream.Requests.Count.ShouldBe(1);

        // 12 tokens at $0.15 and 7 at $0.60 per million.
        var budget = (await host.BudgetsAsync())["agent:tester"];
        budget.GetProperty("limit_usd").GetDecimal().ShouldBe(50m);
        budget.GetProperty("window").GetString().ShouldBe("day");
        budget.GetProperty("spent_usd").GetDecimal().ShouldBe(0.0000060m);
        var trace = await host.TraceAsync(Header(first, "X-Flotilla-Trace-Id"));
        trace.GetProperty("requested_model").GetString().ShouldBe("triage-default");
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe(0.000006m);
    }
}
