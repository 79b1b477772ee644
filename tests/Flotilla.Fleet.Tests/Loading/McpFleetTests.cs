using static Flotilla.Fleet.Tests.FleetText;

namespace Flotilla.Fleet.Tests.Loading;

/// <summary>The MCP side of the fleet file: servers, grants, roles, artifacts and the gateway's MCP settings.</summary>
public sealed class McpFleetTests
{
    private const string Servers = """

        ---
        mcp_servers:
          - { name: github, url: "https://mcp.example/github", trusted: true, read_only_tools: [get_*, search_*], timeout: 5s }
          - { name: files, command: [npx, server-filesystem, /srv], env: { LOG_LEVEL: debug } }
          - { name: linear, url: "https://mcp.example/linear", auth: { type: per_user } }
        """;

    [Fact]
    public void Grants_servers_artifacts_and_roles_load_with_their_defaults()
    {
        const string yaml = """
            gateway:
              artifacts:
                - { name: release-notes-draft, writes: [ { server: github, tools: [create_or_update_file], args: { path: "docs/release-notes/*" } } ] }
              mcp: { approval_ttl: 2h, record_arguments: true }
            ---
            agent:
              name: writer
              owner: docs
              checker: reviewer
              owns: [release-notes-draft]
              mcp_servers:
                - linear
                - { server: github, tools: [get_file, { tool: create_or_update_file, args: { path: "docs/**" } }], deny: [delete_*] }
            ---
            agent:
              name: reviewer
              owner: docs
              role: checker
              mcp_servers: [ { server: github, access: read } ]
            """ + Servers;

        var fleet = Valid(yaml);

        var github = fleet.McpServers.Single(s => s.Name == "github");
        github.Trusted.ShouldBeTrue();
        github.ReadOnlyTools.ShouldBe(["get_*", "search_*"]);
        github.Timeout.ShouldBe(TimeSpan.FromSeconds(5));
        fleet.McpServers.Single(s => s.Name == "files").Timeout.ShouldBe(TimeSpan.FromSeconds(30));
        fleet.McpServers.Single(s => s.Name == "linear").Auth.Type.ShouldBe(McpAuthType.PerUser);

        var writer = fleet.Agents.Single(a => a.Name == "writer");
        writer.Role.ShouldBe(AgentRole.Maker);
        writer.Checker.ShouldBe("reviewer");
        writer.McpServers[0].ShouldSatisfyAllConditions(g => g.Server.ShouldBe("linear"), g => g.Tools.ShouldBeEmpty(), g => g.Access.ShouldBe(McpAccess.Write));
        var grant = writer.McpServers[1];
        grant.Tools.ShouldBe(["get_file", "create_or_update_file"]);
        grant.Deny.ShouldBe(["delete_*"]);
        grant.ArgRules.Single().ShouldSatisfyAllConditions(r => r.Tool.ShouldBe("create_or_update_file"), r => r.Args["path"].ShouldBe("docs/**"));
        fleet.Agents.Single(a => a.Name == "reviewer").ShouldSatisfyAllConditions(a => a.Role.ShouldBe(AgentRole.Checker), a => a.McpServers[0].Access.ShouldBe(McpAccess.Read));

        var artifact = fleet.Gateway.Artifacts.Single();
        artifact.Name.ShouldBe("release-notes-draft");
        artifact.Writes.Single().ShouldSatisfyAllConditions(w => w.Server.ShouldBe("github"), w => w.Tools.ShouldBe(["create_or_update_file"]), w => w.Args["path"].ShouldBe("docs/release-notes/*"));
        fleet.Gateway.Mcp.ShouldBe(new McpGatewayConfig(TimeSpan.FromHours(2), TimeSpan.FromHours(24), true));
    }

    [Fact]
    public void A_checker_with_a_write_grant_is_refused()
    {
        const string yaml = """
            agent:
              name: reviewer
              owner: docs
              role: checker
              mcp_servers: [github]
            """ + Servers;

        SingleError(yaml).ShouldBe($"{At(yaml, "github]")}: agent 'reviewer': role checker may hold no write grant, and 'github' is granted for write; add access: read to it (a checker that can write is a second maker)");
    }

    [Fact]
    public void A_loop_whose_checker_can_write_is_refused()
    {
        const string yaml = """
            agent: { name: writer, owner: docs, checker: helper }
            ---
            agent: { name: helper, owner: docs, mcp_servers: [github] }
            """ + Servers;

        SingleError(yaml).ShouldStartWith($"{At(yaml, "helper")}: agent 'writer': checker 'helper' holds a write grant on 'github' (fleet.yaml:3:");
    }

    [Fact]
    public void A_tool_both_granted_and_denied_can_never_match()
    {
        const string yaml = """
            agent:
              name: a
              owner: t
              mcp_servers: [ { server: github, tools: [delete_repo, get_file], deny: [delete_*] } ]
            """ + Servers;

        SingleError(yaml).ShouldBe($"{At(yaml, "github, tools")}: agent 'a': grant on 'github' lists tool 'delete_repo' and denies it too, so it can never be called; remove it from one of tools and deny");
    }

    [Theory]
    [InlineData("{ server: github, deny: ['*'] }", "grant on 'github' denies every tool; remove the grant instead")]
    [InlineData("{ server: github, tools: [ { tool: write, args: {} } ] }", "a tool rule narrows by args")]
    [InlineData("{ server: github, access: admin }", "access")]
    [InlineData("{ server: jira }", "mcp server 'jira' is not declared")]
    public void Grant_mistakes_are_reported(string grant, string message) =>
        SingleError($"agent: {{ name: a, owner: t, mcp_servers: [ {grant} ] }}" + Servers).ShouldContain(message);

    [Theory]
    [InlineData("artifacts: [ { name: notes, writes: [ { server: jira, tools: [w] } ] } ]", "artifact 'notes': mcp server 'jira' is not declared")]
    [InlineData("artifacts: [ { name: notes } ]", "artifact 'notes': say how a write is recognised")]
    [InlineData("artifacts: [ { name: notes, writes: [ { server: github } ] } ]", "name the tools that write the artifact")]
    [InlineData("mcp: { approval_ttl: 10s }", "gateway.mcp.approval_ttl: use between 1m and 90d")]
    public void Gateway_mcp_mistakes_are_reported(string gateway, string message) =>
        SingleError($"gateway: {{ {gateway} }}" + Servers).ShouldContain(message);

    [Fact]
    public void Tool_call_rate_limits_load_and_a_server_rule_with_model_limits_is_refused()
    {
        var fleet = Valid("gateway: { rate_limits: [ { applies_per: server, tool_calls_per_minute: 30 }, { applies_per: agent, requests_per_minute: 60, tool_calls_per_minute: 10 } ] }" + Servers);
        fleet.Gateway.RateLimits.Select(r => r.ToolCallsPerMinute).ShouldBe([30L, 10L]);

        SingleError("gateway: { rate_limits: [ { applies_per: server, requests_per_minute: 5 } ] }" + Servers)
            .ShouldContain("applies_per: server counts MCP tool calls only");
    }

    [Fact]
    public void Per_user_auth_takes_no_token_from_the_file()
    {
        const string yaml = """mcp_server: { name: s, url: "https://mcp.example", auth: { type: per_user, token: "${env:T}" } }""";

        SingleError(yaml).ShouldContain("per_user auth takes each user's token from the token vault");
    }
}
