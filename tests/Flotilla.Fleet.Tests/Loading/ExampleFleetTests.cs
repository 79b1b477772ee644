using Flotilla.Fleet.Loading;

namespace Flotilla.Fleet.Tests.Loading;

public sealed class ExampleFleetTests
{
    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Flotilla.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no directory above {AppContext.BaseDirectory} holds Flotilla.slnx");
    }

    private static FleetConfig LoadExample(string relativePath)
    {
        var path = Path.Combine(RepositoryRoot(), relativePath);
        var result = FleetLoader.LoadFile(path);
        result.Errors.ShouldBeEmpty(string.Join(Environment.NewLine, result.Errors));
        return result.Fleet.ShouldNotBeNull();
    }

    [Fact]
    public void The_northwind_fleet_loads_with_the_seed_blocks_as_written()
    {
        var fleet = LoadExample("examples/northwind/fleet.yaml");
        var gateway = fleet.Gateway;

        gateway.Providers.Select(p => (p.Name, p.Type)).ShouldBe(
            [("openai", ProviderType.OpenAI), ("anthropic", ProviderType.Anthropic), ("sim", ProviderType.Simulated)]);
        gateway.Providers[0].ApiKey.ShouldBe(new SecretReference("OPENAI_API_KEY"));
        gateway.Providers[0].BaseUrl.ShouldBe(new Uri("https://api.openai.com/v1"));
        gateway.Providers[1].ApiKey.ShouldBe(new SecretReference("ANTHROPIC_API_KEY"));
        gateway.Providers[2].ApiKey.ShouldBeNull();

        var mini = gateway.Models.Single(m => m.Name == "gpt-4o-mini");
        mini.Provider.ShouldBe("openai");
        mini.Price.ShouldBe(new ModelPrice(0.15m, 0.60m));
        mini.DeprecatedAfter.ShouldBe(new DateOnly(2027, 3, 31));
        gateway.Models.Single(m => m.Name == "claude-haiku").UpstreamModel.ShouldBe("claude-3-5-haiku-latest");

        gateway.Routing.DefaultVirtualModel.ShouldBe("triage-default");
        var triage = gateway.Routing.VirtualModels.ShouldHaveSingleItem();
        triage.Name.ShouldBe("triage-default");
        triage.Strategy.ShouldBe(RoutingStrategy.Priority);
        triage.Targets.Select(t => (t.Model, t.Priority)).ShouldBe([("gpt-4o-mini", 0), ("claude-haiku", 1), ("sim-small", 2)]);
        triage.FallbackOn.ShouldBe([429, 500, 502, 503, 504]);
        triage.TtftTimeoutMs.ShouldBe(4000);
        gateway.Routing.Retries.Attempts.ShouldBe(2);
        gateway.Routing.Retries.OnStatusCodes.ShouldBe([429, 500, 502, 503]);

        var caching = gateway.Caching.ShouldNotBeNull();
        caching.Type.ShouldBe(CacheType.Semantic);
        caching.SimilarityThreshold.ShouldBe(0.9);
        caching.NamespacePer.ShouldBe(CacheNamespace.Agent);

        gateway.Guardrails.LlmInput.Select(g => g.Type).ShouldBe(["prompt-injection"]);
        gateway.Guardrails.LlmOutput.Select(g => g.Type).ShouldBe(["pii", "secrets-detection"]);
        gateway.Guardrails.McpPreTool.Select(g => g.Type).ShouldBe(["prompt-injection"]);
        gateway.Guardrails.McpPostTool.Select(g => g.Type).ShouldBe(["secrets-detection", "pii"]);

        var budget = gateway.Budgets.ShouldHaveSingleItem();
        (budget.AppliesPer, budget.LimitUsd, budget.Window).ShouldBe(("agent", 50m, BudgetWindow.Day));
        budget.AlertAt.ShouldBe([75, 90, 100]);
        gateway.DestructiveTools.ShouldBe(["merge_pr", "delete_*", "deploy_*"]);

        fleet.McpServers.Select(s => s.Name).ShouldBe(["github", "linear"]);
        var github = fleet.McpServers[0];
        github.Transport.ShouldBe(McpTransport.Http);
        github.Auth.ShouldBe(new McpAuthConfig(McpAuthType.Bearer, new SecretReference("GITHUB_TOKEN"), null));

        var loop = fleet.FindAgent("bug-report-triage").ShouldNotBeNull();
        loop.Owner.ShouldBe("platform-team");
        loop.Model.ShouldBe("triage-default");
        loop.Instructions.ShouldBe(new VersionedRef("./triage.md", "v6"));
        loop.Skills.ShouldBe([new VersionedRef("triage-runbook", "v3")]);
        loop.McpServers.Select(g => g.Server).ShouldBe(["github", "linear"]);
        loop.McpServers.ShouldAllBe(g => g.Tools.Count == 0);
        loop.Subagents.ShouldBe(["explorer"]);
        loop.Harness.ShouldBe(HarnessConfig.Default with { MaxSteps = 60, MaxTokensPerRun = 1_500_000 });
        loop.Trigger.ShouldBe(new TriggerConfig("0 6 * * 1-5", null));
        loop.Owns.ShouldBe(["release-notes-draft"]);

        var explorer = fleet.FindAgent("explorer").ShouldNotBeNull();
        explorer.Owner.ShouldBe("platform-team");
        explorer.McpServers.ShouldHaveSingleItem().Tools.ShouldBe(["search_code", "get_file_contents", "list_issues"]);
        explorer.Trigger.ShouldBeNull();
    }

    [Fact]
    public void The_northwind_fleet_names_its_file_in_locations()
    {
        var path = Path.Combine(RepositoryRoot(), "examples/northwind/fleet.yaml");
        var fleet = FleetLoader.LoadFile(path).Fleet.ShouldNotBeNull();
        var lines = File.ReadAllLines(path);
        var agent = fleet.FindAgent("bug-report-triage")!;

        agent.Location.File.ShouldBe(path);
        lines[agent.Location.Line - 1].ShouldContain("name: bug-report-triage");
    }

    [Fact]
    public void Pinned_instructions_and_skills_must_be_beside_the_fleet_file()
    {
        var directory = Directory.CreateTempSubdirectory("flotilla-pinned-").FullName;
        try
        {
            var fleet = Path.Combine(directory, "fleet.yaml");
            File.WriteAllText(fleet, "agent:\n  name: triage\n  owner: ops\n  instructions: ./triage.md@v6\n  skills: [runbook@v3]\n");

            var missing = FleetLoader.LoadFile(fleet);
            missing.IsValid.ShouldBeFalse();
            missing.Errors.Select(e => e.Message).ShouldBe([
                "agent 'triage': instructions ./triage.md@v6 are the file triage@v6.md beside the fleet file, which does not exist; add it or fix the version",
                $"agent 'triage': skill runbook@v3 is the folder {Path.Combine("skills", "runbook@v3")} with a SKILL.md, which cannot be read; add it or fix the version",
            ]);

            File.WriteAllText(Path.Combine(directory, "triage@v6.md"), "You triage.");
            Directory.CreateDirectory(Path.Combine(directory, "skills", "runbook@v3"));
            File.WriteAllText(Path.Combine(directory, "skills", "runbook@v3", "SKILL.md"), "---\nname: playbook\ndescription: d\n---\nbody");
            FleetLoader.LoadFile(fleet).Errors.ShouldHaveSingleItem().Message.ShouldContain("names it 'playbook', not 'runbook'");

            File.WriteAllText(Path.Combine(directory, "skills", "runbook@v3", "SKILL.md"), "---\nname: runbook\ndescription: How to triage.\n---\nSteps.");
            FleetLoader.LoadFile(fleet).IsValid.ShouldBeTrue();
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void The_harness_example_loads_with_a_scripted_model()
    {
        var fleet = LoadExample("examples/harness/fleet.yaml");

        fleet.Gateway.Models.Single().Script.Count.ShouldBe(3);
        fleet.FindAgent("release-notes")!.Harness.MaxCostPerRun.ShouldBe(0.50m);
    }

    [Fact]
    public void The_quickstart_fleet_loads()
    {
        var fleet = LoadExample("examples/quickstart/fleet.yaml");

        fleet.Gateway.Providers.ShouldAllBe(p => p.Type == ProviderType.Simulated);
        fleet.Agents.ShouldNotBeEmpty();
    }

    // The article's two blocks on their own name things nobody declared; the loader says exactly which.
    [Fact]
    public void The_seed_blocks_alone_report_only_what_they_leave_undeclared()
    {
        const string yaml = """
            gateway:
              routing:
                virtual_model: triage-default
                retries: { attempts: 2, on_status_codes: ["429","500","502","503"] }
              caching: { type: semantic, similarity_threshold: 0.9, namespace_per: agent }
              guardrails:
                llm_input: [prompt-injection]
                llm_output: [pii, secrets-detection]
                mcp_pre_tool: [prompt-injection]
                mcp_post_tool: [secrets-detection, pii]
              budgets:
                - { applies_per: agent, limit: 50/day, alert_at: [75,90,100] }
              destructive_tools: [merge_pr, delete_*, deploy_*]
            ---
            agent:
              name: bug-report-triage
              owner: platform-team
              model: triage-default
              instructions: ./triage.md@v6
              skills: [triage-runbook@v3]
              mcp_servers: [github, linear]
              subagents: [explorer]
              harness: { max_steps: 60, max_tokens_per_run: 1_500_000 }
              trigger: { schedule: "0 6 * * 1-5" }
            """;

        FleetText.Errors(yaml).ShouldBe([
            $"{FleetText.At(yaml, "triage-default")}: gateway.routing.virtual_model: 'triage-default' is neither a virtual model nor a model (none declared); declare it or fix the name",
            $"{FleetText.At(yaml, "triage-default", 2)}: agent 'bug-report-triage': model 'triage-default' is neither a virtual model nor a model (none declared); declare it under gateway or fix the name",
            $"{FleetText.At(yaml, "github")}: agent 'bug-report-triage': mcp server 'github' is not declared (none declared); add an mcp_server document or fix the name",
            $"{FleetText.At(yaml, "linear")}: agent 'bug-report-triage': mcp server 'linear' is not declared (none declared); add an mcp_server document or fix the name",
            $"{FleetText.At(yaml, "explorer")}: agent 'bug-report-triage': subagent 'explorer' is not a declared agent (declared: bug-report-triage); add an agent document or fix the name",
        ]);
    }
}
