using Flotilla.Fleet.Planning;

namespace Flotilla.Fleet.Tests.Planning;

public sealed class FleetPlanTests
{
    private const string Before = """
        # the fleet
        gateway:
          providers:
            - { name: sim, type: simulated }
            - { name: openai, type: openai, api_key: "${env:OPENAI_API_KEY}" }
          models:
            - { name: small, provider: sim }
          budgets:
            - { applies_per: agent, limit: 50/day, alert_at: [75, 90] }
          guardrails:
            llm_input: [prompt-injection]
        ---
        mcp_server: { name: github, transport: http, url: "https://example.invalid/mcp" }
        ---
        mcp_server: { name: linear, transport: http, url: "https://example.invalid/linear" }
        ---
        agent:
          name: bug-report-triage
          owner: platform-team
          model: small
          instructions: ./triage.md@v6
          mcp_servers: [github, linear]
        """;

    [Fact]
    public void Comments_key_order_quoting_and_style_are_not_changes()
    {
        const string Restyled = """
            gateway:
              guardrails: { llm_input: [ "prompt-injection" ] }
              budgets:
                - applies_per: agent
                  alert_at: [75, 90]
                  limit: "50/day"
              models: [ { provider: sim, name: small } ]
              providers:
                - name: sim
                  type: simulated
                - { type: openai, name: openai, api_key: "${env:OPENAI_API_KEY}" }
            ---
            mcp_servers:
              - { name: github, transport: http, url: "https://example.invalid/mcp" }
              - { name: linear, transport: http, url: "https://example.invalid/linear" }
            ---
            agents:
              - { name: bug-report-triage, owner: platform-team, model: small, instructions: ./triage.md@v6, mcp_servers: [github, linear] }
            """;

        FleetPlan.Compare(Before, Restyled).ShouldBeEmpty();
    }

    [Fact]
    public void Each_edit_is_one_line_per_section_and_agent_field_by_field()
    {
        var after = Before
            .Replace("limit: 50/day", "limit: 80/day", StringComparison.Ordinal)
            .Replace("instructions: ./triage.md@v6", "instructions: ./triage.md@v7", StringComparison.Ordinal)
            .Replace("mcp_servers: [github, linear]", "mcp_servers: [github]\n  trigger: { schedule: \"0 6 * * 1-5\" }", StringComparison.Ordinal)
            .Replace("mcp_server: { name: linear, transport: http, url: \"https://example.invalid/linear\" }\n---\n", "", StringComparison.Ordinal)
            .Replace("    - { name: openai, type: openai, api_key: \"${env:OPENAI_API_KEY}\" }\n", "", StringComparison.Ordinal)
            + "\n---\nagent: { name: dependency-bump, owner: platform-team }\n";

        FleetPlan.Compare(Before, after).ShouldBe(
        [
            "~ gateway.budgets[0].limit 50/day → 80/day",
            "- gateway.providers[openai]",
            "~ agent bug-report-triage: instructions ./triage.md@v6 → ./triage.md@v7",
            "~ agent bug-report-triage: mcp_servers [github, linear] → [github]",
            "~ agent bug-report-triage: + trigger.schedule 0 6 * * 1-5",
            "+ agent dependency-bump",
            "- mcp_server linear",
        ]);
    }

    [Fact]
    public void Against_nothing_every_section_and_agent_is_new()
    {
        FleetPlan.Compare(null, Before).ShouldBe(["+ gateway", "+ mcp_server github", "+ mcp_server linear", "+ agent bug-report-triage"]);
    }

    [Fact]
    public void A_value_with_control_characters_is_shown_safely_and_a_long_one_is_cut()
    {
        var after = Before.Replace("./triage.md@v6", "\"./\\e[31m" + new string('x', 200) + "\"", StringComparison.Ordinal);
        var change = FleetPlan.Compare(Before, after).ShouldHaveSingleItem();
        change.ShouldNotContain("\u001b");
        change.Length.ShouldBeLessThan(220);
    }

    [Fact]
    public void Reordering_route_targets_is_a_change_but_adding_one_is_reported_once()
    {
        const string Routes = """
            gateway:
              routing:
                virtual_models:
                  - { name: v, targets: [ { model: a }, { model: b } ] }
            """;
        FleetPlan.Compare(Routes, Routes.Replace("[ { model: a }, { model: b } ]", "[ { model: b }, { model: a } ]", StringComparison.Ordinal))
            .ShouldBe(["~ gateway.routing.virtual_models[v].targets a, b → b, a"]);
        FleetPlan.Compare(Routes, Routes.Replace("{ model: b } ]", "{ model: b }, { model: c } ]", StringComparison.Ordinal))
            .ShouldBe(["+ gateway.routing.virtual_models[v].targets[c]"]);
    }

    [Fact]
    public void A_webhook_url_is_shown_by_its_host_and_a_fingerprint_never_its_path()
    {
        const string Before = "gateway:\n  alerts: { webhook: \"https://hooks.example.com/services/T000/B000/secretpart1\" }\n";
        var change = FleetPlan.Compare(Before, Before.Replace("secretpart1", "secretpart2", StringComparison.Ordinal)).ShouldHaveSingleItem();
        change.ShouldStartWith("~ gateway.alerts.webhook https://hooks.example.com/… (#");
        change.ShouldNotContain("secretpart");
    }
}
