using static Flotilla.Fleet.Tests.FleetText;

namespace Flotilla.Fleet.Tests.Loading;

public sealed class FleetLoaderValueTests
{
    [Fact]
    public void An_empty_file_is_an_empty_valid_fleet()
    {
        var fleet = Valid("");

        fleet.Gateway.ShouldBe(GatewayConfig.Empty);
        fleet.McpServers.ShouldBeEmpty();
        fleet.Agents.ShouldBeEmpty();
    }

    [Fact]
    public void Comments_and_empty_documents_are_skipped()
    {
        var fleet = Valid("""
            # nothing yet
            ---
            ---
            agent: { name: a, owner: team }
            ---
            """);

        fleet.Agents.ShouldHaveSingleItem().Name.ShouldBe("a");
    }

    [Theory]
    [InlineData("1_500_000", 1_500_000L)]
    [InlineData("1500000", 1_500_000L)]
    [InlineData("\"2_000\"", 2_000L)]
    [InlineData("9_000_000_000", 9_000_000_000L)]
    public void Integers_may_group_digits_with_underscores(string text, long expected)
    {
        var fleet = Valid($"agent: {{ name: a, owner: team, harness: {{ max_tokens_per_run: {text} }} }}");

        fleet.Agents[0].Harness.MaxTokensPerRun.ShouldBe(expected);
    }

    [Fact]
    public void Status_codes_may_be_quoted_or_bare()
    {
        var fleet = Valid("""
            gateway:
              routing:
                retries: { on_status_codes: ["429","500", 503] }
            """);

        fleet.Gateway.Routing.Retries.OnStatusCodes.ShouldBe([429, 500, 503]);
    }

    [Theory]
    [InlineData("500ms", 0, 0, 0, 500)]
    [InlineData("30s", 0, 0, 30, 0)]
    [InlineData("45", 0, 0, 45, 0)]
    [InlineData("5m", 0, 5, 0, 0)]
    [InlineData("1h", 1, 0, 0, 0)]
    [InlineData("1.5h", 1, 30, 0, 0)]
    [InlineData("7d", 168, 0, 0, 0)]
    public void DurationText_TryParse_ValidText_ReturnsDuration(string text, int hours, int minutes, int seconds, int milliseconds)
    {
        DurationText.TryParse(text, out var duration).ShouldBeTrue();

        duration.ShouldBe(new TimeSpan(0, hours, minutes, seconds, milliseconds));
    }

    [Theory]
    [InlineData("")]
    [InlineData("1 hour")]
    [InlineData("1hour")]
    [InlineData("0s")]
    [InlineData("-1h")]
    [InlineData("h")]
    [InlineData("1w")]
    public void DurationText_TryParse_InvalidText_ReturnsFalse(string text) =>
        DurationText.TryParse(text, out _).ShouldBeFalse();

    [Fact]
    public void Caching_ttl_is_read_as_a_duration()
    {
        var fleet = Valid("gateway: { caching: { type: exact, ttl: 500ms } }");

        fleet.Gateway.Caching!.Ttl.ShouldBe(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void Env_references_become_secret_references_and_are_not_resolved_at_load()
    {
        var fleet = Valid("""
            gateway:
              providers:
                - name: openai
                  type: openai
                  api_key: "${env:FLOTILLA_TEST_UNSET_KEY}"
                  headers: { OpenAI-Organization: org-northwind, X-Token: "${env:FLOTILLA_TEST_HEADER}" }
            ---
            mcp_server:
              name: tools
              command: [node, server.js]
              env: { API_TOKEN: "${env:TOOLS_TOKEN}", LOG_LEVEL: info }
              auth: { type: header, header: X-Api-Key, token: "${env:TOOLS_KEY}" }
            """);

        var provider = fleet.Gateway.Providers[0];
        provider.ApiKey.ShouldBe(new SecretReference("FLOTILLA_TEST_UNSET_KEY"));
        provider.ApiKey!.Resolve().ShouldBeNull();
        provider.ApiKey.ToString().ShouldBe("${env:FLOTILLA_TEST_UNSET_KEY}");
        provider.Headers["OpenAI-Organization"].ShouldBe(new ConfigValue("org-northwind", null));
        provider.Headers["x-token"].ShouldBe(new ConfigValue(null, new SecretReference("FLOTILLA_TEST_HEADER")));

        var server = fleet.McpServers[0];
        server.Transport.ShouldBe(McpTransport.Stdio);
        server.Command.ShouldBe(["node", "server.js"]);
        server.Env["API_TOKEN"].Secret.ShouldBe(new SecretReference("TOOLS_TOKEN"));
        server.Env["LOG_LEVEL"].Literal.ShouldBe("info");
        server.Auth.ShouldBe(new McpAuthConfig(McpAuthType.Header, new SecretReference("TOOLS_KEY"), "X-Api-Key"));
    }

    [Fact]
    public void SecretReference_Resolve_ReadsTheEnvironmentWhenUsed()
    {
        var name = $"FLOTILLA_TEST_{Guid.NewGuid():N}";
        var reference = new SecretReference(name);
        reference.Resolve().ShouldBeNull();

        Environment.SetEnvironmentVariable(name, "value");
        try
        {
            reference.Resolve().ShouldBe("value");
            new ConfigValue(null, reference).Resolve().ShouldBe("value");
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }

    [Fact]
    public void Absent_sections_take_the_documented_defaults()
    {
        var fleet = Valid("""
            gateway:
              providers: [ { name: sim, type: simulated } ]
              models: [ { name: m, provider: sim } ]
              routing:
                virtual_models: [ { name: v, targets: [m] } ]
            ---
            agent: { name: a, owner: team }
            """);

        var gateway = fleet.Gateway;
        gateway.Routing.DefaultVirtualModel.ShouldBeNull();
        gateway.Routing.Retries.ShouldBe(RetryConfig.Default);
        gateway.Routing.Cooldown.ShouldBe(CooldownConfig.Default);
        gateway.Routing.RequestTimeoutMs.ShouldBe(300_000);
        gateway.Caching.ShouldBeNull();
        gateway.Guardrails.ShouldBe(GuardrailsConfig.None);
        gateway.Budgets.ShouldBeEmpty();
        gateway.RateLimits.ShouldBeEmpty();
        gateway.Alerts.ShouldBeNull();
        gateway.DestructiveTools.ShouldBeEmpty();
        gateway.Limits.ShouldBe(LimitsConfig.Default);

        var provider = gateway.Providers[0];
        provider.BaseUrl.ShouldBeNull();
        provider.Headers.ShouldBeEmpty();
        provider.Simulation.ShouldBe(SimulationConfig.Default);

        var model = gateway.Models[0];
        model.UpstreamModel.ShouldBe("m");
        model.Price.ShouldBe(ModelPrice.Free);
        model.DeprecatedAfter.ShouldBeNull();
        model.Kind.ShouldBe(ModelKind.Chat);

        var virtualModel = gateway.Routing.VirtualModels[0];
        virtualModel.Strategy.ShouldBe(RoutingStrategy.Priority);
        virtualModel.FallbackOn.ShouldBe(VirtualModelConfig.DefaultFallbackOn);
        virtualModel.TtftTimeoutMs.ShouldBeNull();
        virtualModel.LatencyFactor.ShouldBe(1.5);

        var agent = fleet.Agents[0];
        agent.Model.ShouldBeNull();
        agent.Description.ShouldBeNull();
        agent.Instructions.ShouldBeNull();
        agent.Skills.ShouldBeEmpty();
        agent.McpServers.ShouldBeEmpty();
        agent.Subagents.ShouldBeEmpty();
        agent.Harness.ShouldBe(HarnessConfig.Default);
        agent.Trigger.ShouldBeNull();
        agent.Owns.ShouldBeEmpty();
        agent.Metadata.ShouldBeEmpty();
    }

    [Fact]
    public void A_partial_section_keeps_the_defaults_of_the_keys_it_omits()
    {
        var fleet = Valid("""
            gateway:
              routing:
                retries: { attempts: 4 }
                cooldown: { seconds: 10 }
              limits: { max_request_body_bytes: 1_048_576 }
            ---
            agent: { name: a, owner: team, harness: { max_steps: 5 } }
            """);

        fleet.Gateway.Routing.Retries.ShouldBe(RetryConfig.Default with { Attempts = 4 });
        fleet.Gateway.Routing.Retries.OnStatusCodes.ShouldBe(RetryConfig.Default.OnStatusCodes);
        fleet.Gateway.Routing.Cooldown.ShouldBe(new CooldownConfig(CooldownConfig.Default.Failures, 10));
        fleet.Gateway.Limits.MaxRequestBodyBytes.ShouldBe(1_048_576);
        fleet.Agents[0].Harness.ShouldBe(HarnessConfig.Default with { MaxSteps = 5 });
    }

    [Fact]
    public void Caching_with_only_a_type_takes_the_defaults()
    {
        var caching = Valid("gateway: { caching: { type: semantic } }").Gateway.Caching.ShouldNotBeNull();

        caching.Type.ShouldBe(CacheType.Semantic);
        caching.SimilarityThreshold.ShouldBe(0.9);
        caching.NamespacePer.ShouldBe(CacheNamespace.Agent);
        caching.Ttl.ShouldBe(TimeSpan.FromHours(1));
        caching.EmbeddingModel.ShouldBeNull();
        caching.MaxEntries.ShouldBe(10_000);
        caching.CacheToolCalls.ShouldBeFalse();
    }

    [Fact]
    public void Every_routing_option_is_read()
    {
        var routing = Valid("""
            gateway:
              providers: [ { name: sim, type: simulated, simulate: { latency_ms: 20, chunk_delay_ms: 5, fail_with_status: 503 } } ]
              models:
                - { name: a, provider: sim, model: upstream-a, price: { input_per_million: 1.25, output_per_million: 10 } }
                - { name: b, provider: sim }
              routing:
                virtual_model: spread
                virtual_models:
                  - name: spread
                    strategy: weight
                    targets: [ { model: a, weight: 3 }, { model: b, weight: 0.5 } ]
                    fallback_on: [503]
                    ttft_timeout_ms: 2_500
                  - { name: fast, strategy: latency, latency_factor: 2, targets: [b, a] }
                retries: { attempts: 0, on_status_codes: [429], base_delay_ms: 100, max_delay_ms: 1000 }
                cooldown: { failures: 5, seconds: 60 }
                request_timeout_ms: 60000
            """).Gateway.Routing;

        routing.DefaultVirtualModel.ShouldBe("spread");
        var spread = routing.VirtualModels[0];
        spread.Strategy.ShouldBe(RoutingStrategy.Weight);
        spread.Targets.Select(t => (t.Model, t.Weight)).ShouldBe([("a", 3.0), ("b", 0.5)]);
        spread.FallbackOn.ShouldBe([503]);
        spread.TtftTimeoutMs.ShouldBe(2500);
        var fast = routing.VirtualModels[1];
        fast.Strategy.ShouldBe(RoutingStrategy.Latency);
        fast.LatencyFactor.ShouldBe(2);
        fast.Targets.Select(t => (t.Model, t.Priority, t.Weight)).ShouldBe([("b", 0, 1.0), ("a", 1, 1.0)]);
        routing.Retries.ShouldBe(new RetryConfig(0, [429], 100, 1000), new RetryComparer());
        routing.Cooldown.ShouldBe(new CooldownConfig(5, 60));
        routing.RequestTimeoutMs.ShouldBe(60_000);
    }

    [Fact]
    public void Models_providers_and_prices_are_read()
    {
        var gateway = Valid("""
            gateway:
              providers:
                - { name: local, type: openai, base_url: "http://127.0.0.1:11434/v1" }
                - { name: sim, type: simulated, simulate: { latency_ms: 20, chunk_delay_ms: 5, fail_with_status: 503 } }
              models:
                - { name: a, provider: local, model: llama3, price: { input_per_million: 1.25, output_per_million: 10 }, deprecated_after: 2026-01-31 }
                - { name: e, provider: sim, type: embedding }
            """).Gateway;

        gateway.Providers[0].BaseUrl.ShouldBe(new Uri("http://127.0.0.1:11434/v1"));
        gateway.Providers[0].ApiKey.ShouldBeNull();
        gateway.Providers[1].Simulation.ShouldBe(new SimulationConfig(20, 5, 503));
        gateway.Models[0].ShouldBe(gateway.Models[0] with
        {
            UpstreamModel = "llama3", Price = new ModelPrice(1.25m, 10m), DeprecatedAfter = new DateOnly(2026, 1, 31), Kind = ModelKind.Chat,
        });
        gateway.Models[0].Price.Cost(1_000_000, 500_000).ShouldBe(6.25m);
        gateway.Models[1].Kind.ShouldBe(ModelKind.Embedding);
    }

    [Fact]
    public void Governance_sections_are_read()
    {
        var gateway = Valid("""
            gateway:
              providers: [ { name: sim, type: simulated } ]
              models: [ { name: embed, provider: sim, type: embedding } ]
              caching: { type: semantic, similarity_threshold: 0.95, namespace_per: team, ttl: 30m, embedding_model: embed, max_entries: 500, cache_tool_calls: true }
              guardrails:
                llm_input:
                  - prompt-injection
                  - { type: prompt-injection, name: strict-injection, threshold: 0.8, action: audit }
                llm_output:
                  - { type: regex, patterns: ["ticket-[0-9]+"], action: redact }
                mcp_pre_tool:
                  - { type: webhook, url: "https://guard.example/check", timeout_ms: 250, on_error: allow }
              budgets:
                - { applies_per: team, limit: "$10.50/hour", alert_at: [50, 100], mode: audit }
                - { applies_per: metadata.loop, limit: 1_000/month }
              rate_limits:
                - { applies_per: agent, requests_per_minute: 600, tokens_per_minute: 200_000 }
                - { applies_per: model, requests_per_day: 10000, tokens_per_hour: 5, requests_per_hour: 7, tokens_per_day: 9 }
              alerts: { webhook: "https://hooks.example/flotilla" }
              destructive_tools: [merge_pr, "delete_*"]
            """).Gateway;

        gateway.Caching.ShouldBe(new CachingConfig(
            CacheType.Semantic, 0.95, CacheNamespace.Team, TimeSpan.FromMinutes(30), "embed", 500, true, gateway.Caching!.Location));

        var input = gateway.Guardrails.LlmInput;
        input[0].ShouldBe(input[0] with { Name = "prompt-injection", Type = "prompt-injection", Action = GuardrailAction.Block, Threshold = null });
        input[1].ShouldBe(input[1] with { Name = "strict-injection", Type = "prompt-injection", Action = GuardrailAction.Audit, Threshold = 0.8 });
        var regex = gateway.Guardrails.LlmOutput.ShouldHaveSingleItem();
        regex.Action.ShouldBe(GuardrailAction.Redact);
        regex.Patterns.ShouldBe(["ticket-[0-9]+"]);
        var webhook = gateway.Guardrails.McpPreTool.ShouldHaveSingleItem();
        webhook.Url.ShouldBe(new Uri("https://guard.example/check"));
        webhook.TimeoutMs.ShouldBe(250);
        webhook.FailOpen.ShouldBeTrue();
        gateway.Guardrails.McpPostTool.ShouldBeEmpty();

        gateway.Budgets[0].ShouldBe(gateway.Budgets[0] with { AppliesPer = "team", LimitUsd = 10.50m, Window = BudgetWindow.Hour, Mode = PolicyMode.Audit });
        gateway.Budgets[0].AlertAt.ShouldBe([50, 100]);
        gateway.Budgets[1].ShouldBe(gateway.Budgets[1] with { AppliesPer = "metadata.loop", LimitUsd = 1000m, Window = BudgetWindow.Month, Mode = PolicyMode.Enforce });
        gateway.Budgets[1].AlertAt.ShouldBeEmpty();

        gateway.RateLimits[0].ShouldBe(new RateLimitRule("agent", 600, null, null, 200_000, null, null, gateway.RateLimits[0].Location));
        gateway.RateLimits[1].ShouldBe(new RateLimitRule("model", null, 7, 10_000, null, 5, 9, gateway.RateLimits[1].Location));
        gateway.Alerts.ShouldBe(new AlertsConfig(new Uri("https://hooks.example/flotilla")));
        gateway.DestructiveTools.ShouldBe(["merge_pr", "delete_*"]);
    }

    [Fact]
    public void Agent_fields_are_read()
    {
        var fleet = Valid($$"""
            agent:
              name: nightly-deps
              owner: platform-team
              description: Bumps dependencies on Tuesdays.
              model: assistant
              instructions: prompts/deps.md@2024-06-01
              skills: [bump@v3, changelog@1.2.0]
              mcp_servers:
                - github
                - { server: github-readonly, tools: [get_file_contents] }
              harness: { max_steps: 10, max_tokens_per_run: 50_000, timeout_seconds: 600 }
              trigger: { schedule: "30 4 * * 2", timezone: Europe/Berlin }
              owns: [deps-pr]
              metadata: { cost_center: "42", tier: gold }
            ---
            mcp_server: { name: github, url: "https://mcp.example/github" }
            ---
            mcp_server: { name: github-readonly, url: "https://mcp.example/github" }
            {{Gateway}}
            """);

        var agent = fleet.Agents.ShouldHaveSingleItem();
        agent.Description.ShouldBe("Bumps dependencies on Tuesdays.");
        agent.Instructions.ShouldBe(new VersionedRef("prompts/deps.md", "2024-06-01"));
        agent.Skills.ShouldBe([new VersionedRef("bump", "v3"), new VersionedRef("changelog", "1.2.0")]);
        agent.McpServers.Select(g => (g.Server, string.Join(",", g.Tools))).ShouldBe([("github", ""), ("github-readonly", "get_file_contents")]);
        agent.Harness.ShouldBe(new HarnessConfig(10, 50_000, 600));
        agent.Trigger.ShouldBe(new TriggerConfig("30 4 * * 2", "Europe/Berlin"));
        agent.Owns.ShouldBe(["deps-pr"]);
        agent.Metadata.ShouldBe(new Dictionary<string, string> { ["cost_center"] = "42", ["tier"] = "gold" });
        fleet.McpServers.ShouldAllBe(s => s.Transport == McpTransport.Http && s.Auth == McpAuthConfig.None);
    }

    [Fact]
    public void Agents_and_mcp_servers_may_be_written_as_lists()
    {
        var fleet = Valid($$"""
            mcp_servers:
              - { name: github, url: "https://mcp.example/github" }
              - { name: files, transport: stdio, command: [npx, -y, "@modelcontextprotocol/server-filesystem", /srv] }
            agents:
              - { name: maker, owner: team-a, mcp_servers: [github, files], subagents: [checker] }
              - { name: checker, owner: team-a, mcp_servers: [files] }
            ---
            agent: { name: third, owner: team-b }
            {{Gateway}}
            """);

        fleet.McpServers.Select(s => s.Name).ShouldBe(["github", "files"]);
        fleet.McpServers[1].Transport.ShouldBe(McpTransport.Stdio);
        fleet.Agents.Select(a => a.Name).ShouldBe(["maker", "checker", "third"]);
    }

    [Fact]
    public void Locations_point_at_the_declaration()
    {
        const string yaml = """
            gateway:
              providers:
                - { name: sim, type: simulated }
            ---
            agent:
              name: a
              owner: team
            """;

        var fleet = Valid(yaml);

        fleet.Gateway.Providers[0].Location.ShouldBe(new SourceLocation(FileName, 3, 7));
        fleet.Agents[0].Location.ShouldBe(new SourceLocation(FileName, 6, 3));
        fleet.Agents[0].Location.ToString().ShouldBe("fleet.yaml:6:3");
    }

    [Theory]
    [InlineData("./triage.md@v6", "./triage.md", "v6")]
    [InlineData("triage-runbook@v3", "triage-runbook", "v3")]
    [InlineData("scope@org/skill@v1", "scope@org/skill", "v1")]
    [InlineData("triage-runbook", "triage-runbook", null)]
    [InlineData("triage-runbook@", "triage-runbook", null)]
    [InlineData("@v1", "@v1", null)]
    public void VersionedRef_Parse_SplitsAtTheLastAt(string text, string name, string? version)
    {
        var reference = VersionedRef.Parse(text);

        reference.ShouldBe(new VersionedRef(name, version));
    }

    private sealed class RetryComparer : IEqualityComparer<RetryConfig>
    {
        public bool Equals(RetryConfig? x, RetryConfig? y) =>
            x is not null && y is not null && x with { OnStatusCodes = [] } == y with { OnStatusCodes = [] } && x.OnStatusCodes.SequenceEqual(y.OnStatusCodes);

        public int GetHashCode(RetryConfig obj) => obj.Attempts;
    }
}
