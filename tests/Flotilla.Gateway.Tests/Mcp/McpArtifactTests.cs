using System.Net.Http.Json;
using System.Text.Json;
using Flotilla.Mcp.Calls;
using Flotilla.Testing;
using ModelContextProtocol;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>Artifact ownership: one loop owns an artifact, a write by another is refused, and "who touches it" is a lookup.</summary>
public sealed class McpArtifactTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Only_the_owner_may_write_an_artifact_and_who_touches_it_is_answered_from_grants_and_traces()
    {
        await using var github = await FakeMcpServer.StartAsync();
        var yaml = """
            gateway:
              artifacts:
                - { name: release-notes-draft, writes: [ { server: github, tools: [write_file], args: { path: "docs/release-notes/*" } } ] }
            ---
            agent: { name: notes-writer, owner: docs, owns: [release-notes-draft], mcp_servers: [github] }
            ---
            agent: { name: dependency-bump, owner: platform, mcp_servers: [github] }
            ---
            agent: { name: reviewer, owner: docs, role: checker, mcp_servers: [ { server: github, access: read } ] }
            """ + "\n" + McpHost.Server("github", github);
        await using var mcp = await McpHost.StartAsync(yaml, ready: 1);
        var owner = await mcp.ConnectAsync("notes-writer");
        var other = await mcp.ConnectAsync("dependency-bump");
        var notes = new Dictionary<string, object?> { ["path"] = "docs/release-notes/1.2.md", ["content"] = "notes" };

        (await owner.CallToolAsync("github__write_file", notes, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        var refused = await Should.ThrowAsync<McpProtocolException>(() => other.CallToolAsync("github__write_file", notes, cancellationToken: Ct).AsTask());
        ((int)refused.ErrorCode).ShouldBe(McpErrors.Forbidden);
        refused.Message.ShouldEndWith("'write_file' on 'github' writes artifact 'release-notes-draft', which agent 'notes-writer' owns; only its owner may write it");
        (await other.CallToolAsync("github__write_file", new Dictionary<string, object?> { ["path"] = "go.mod", ["content"] = "x" }, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        github.Received.Count(r => r.Tool == "write_file" && r.Arguments.Contains("release-notes")).ShouldBe(1);
        await mcp.Host.TracesAsync(3);

        var report = await mcp.Host.Admin.GetFromJsonAsync<JsonElement>("/api/artifacts/release-notes-draft", Ct);
        report.GetProperty("owner").GetString().ShouldBe("notes-writer");
        var canWrite = report.GetProperty("can_write").EnumerateArray().ToDictionary(g => g.GetProperty("agent").GetString()!, g => g);
        canWrite.Keys.Order().ShouldBe(["dependency-bump", "notes-writer"]);
        canWrite["notes-writer"].GetProperty("is_owner").GetBoolean().ShouldBeTrue();
        canWrite["dependency-bump"].GetProperty("tools")[0].GetString().ShouldBe("github__write_file");
        var wrote = report.GetProperty("wrote").EnumerateArray().ToDictionary(w => w.GetProperty("agent").GetString()!, w => (Calls: w.GetProperty("calls").GetInt32(), Refused: w.GetProperty("refused").GetInt32()));
        wrote["notes-writer"].ShouldBe((1, 0));
        wrote["dependency-bump"].ShouldBe((1, 1));

        using var missing = await mcp.Host.Admin.GetAsync("/api/artifacts/nothing-here", Ct);
        ((int)missing.StatusCode).ShouldBe(404);
    }
}
