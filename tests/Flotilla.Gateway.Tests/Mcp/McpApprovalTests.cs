using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Mcp.Calls;
using Flotilla.Testing;
using Microsoft.Data.Sqlite;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>The approval gate on destructive tools and idempotent side effects, through /mcp and the admin API.</summary>
public sealed class McpApprovalTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(FakeMcpServer github) => """
        gateway:
          destructive_tools: [deploy_*]
          mcp: { approval_ttl: 1h, idempotency_ttl: 1h }
        ---
        agent:
          name: writer
          owner: docs
          mcp_servers: [github]
        """ + "\n" + McpHost.Server("github", github);

    private static async Task<CallToolResult> CallAsync(McpClient client, string tool, object arguments, JsonObject? meta = null) =>
        await client.CallToolAsync(new CallToolRequestParams
        {
            Name = tool,
            Arguments = JsonSerializer.SerializeToElement(arguments).EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()),
            Meta = meta,
        }, Ct);

    private static string ApprovalId(CallToolResult result)
    {
        result.IsError.ShouldBe(true);
        ((TextContentBlock)result.Content.Single()).Text.ShouldContain("has NOT run");
        return result.Meta!["flotilla/approval"]!["id"]!.GetValue<string>();
    }

    private static string Text(CallToolResult result) => ((TextContentBlock)result.Content.Single()).Text;

    private static async Task<HttpResponseMessage> DecideAsync(McpHost mcp, string id, string decision, string? reason = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/approvals/{id}/{decision}")
        {
            Content = reason is null ? null : JsonContent.Create(new { reason }),
        };
        request.Headers.Add("X-Flotilla-Actor", "ops-oncall");
        return await mcp.Host.Admin.SendAsync(request, Ct);
    }

    [Fact]
    public async Task A_destructive_call_waits_for_approval_then_runs_exactly_once_and_retries_replay_its_result()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        var writer = await mcp.ConnectAsync("writer");

        var id = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 42 }));
        ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 42 })).ShouldBe(id, "a retry before the decision waits on the same approval");
        github.CallsTo("merge_pr").ShouldBe(0);

        var pending = await mcp.Host.Admin.GetFromJsonAsync<JsonElement>("/api/approvals?status=pending", Ct);
        var listed = pending.GetProperty("data").EnumerateArray().Single();
        listed.GetProperty("id").GetString().ShouldBe(id);
        listed.GetProperty("agent").GetString().ShouldBe("writer");
        listed.GetProperty("tool").GetString().ShouldBe("merge_pr");
        listed.GetProperty("arguments").GetString().ShouldBe("""{"number":42}""");

        using var approved = await DecideAsync(mcp, id, "approve");
        approved.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await approved.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("decided_by").GetString().ShouldBe("admin (ops-oncall)");

        var ran = await CallAsync(writer, "github__merge_pr", new { number = 42 });
        ran.IsError.ShouldNotBe(true);
        Text(ran).ShouldBe("merged #42");
        var again = await CallAsync(writer, "github__merge_pr", new { number = 42 });
        Text(again).ShouldBe("merged #42");
        github.CallsTo("merge_pr").ShouldBe(1);

        var traces = await mcp.Host.TracesAsync(4);
        var executed = traces.Single(t => t.GetProperty("tool").TryGetProperty("idempotency", out var i) && i.GetString() == "executed");
        executed.GetProperty("tool").GetProperty("approval_id").GetString().ShouldBe(id);
        traces.Count(t => t.GetProperty("tool").TryGetProperty("idempotency", out var i) && i.GetString() == "replayed").ShouldBe(1);
        (await mcp.Host.Admin.GetFromJsonAsync<JsonElement>($"/api/approvals/{id}", Ct)).GetProperty("status").GetString().ShouldBe("consumed");
    }

    [Fact]
    public async Task A_denied_call_is_refused_with_who_and_why_and_a_denial_needs_a_reason()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        var writer = await mcp.ConnectAsync("writer");
        var id = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 7 }));

        using (var bare = await DecideAsync(mcp, id, "deny"))
        {
            bare.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        }

        using (var denied = await DecideAsync(mcp, id, "deny", "PR 7 has no review"))
        {
            denied.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        using (var twice = await DecideAsync(mcp, id, "approve"))
        {
            twice.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        }

        var refused = await Should.ThrowAsync<McpProtocolException>(() => CallAsync(writer, "github__merge_pr", new { number = 7 }));
        ((int)refused.ErrorCode).ShouldBe(McpErrors.Forbidden);
        refused.Message.ShouldContain($"approval {id} was denied by admin (ops-oncall)");
        refused.Message.ShouldEndWith(": PR 7 has no review");
        github.CallsTo("merge_pr").ShouldBe(0);
    }

    [Fact]
    public async Task An_approval_left_unanswered_expires_and_the_call_is_denied()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1, time);
        var writer = await mcp.ConnectAsync("writer");
        var id = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 3 }));

        time.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));

        using (var late = await DecideAsync(mcp, id, "approve"))
        {
            late.StatusCode.ShouldBe(HttpStatusCode.Conflict);
            (await late.Content.ReadAsStringAsync(Ct)).ShouldContain("approval_expired");
        }

        var refused = await Should.ThrowAsync<McpProtocolException>(() => CallAsync(writer, "github__merge_pr", new { number = 3 }));
        refused.Message.ShouldContain($"approval {id} expired unanswered at");
        var again = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 3 }));
        again.ShouldNotBe(id);
        refused.Message.ShouldContain($"approval {again} now asks again");
        github.CallsTo("merge_pr").ShouldBe(0);
    }

    [Fact]
    public async Task An_approval_covers_only_its_arguments()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        var writer = await mcp.ConnectAsync("writer");
        var id = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 1 }));
        (await DecideAsync(mcp, id, "approve")).Dispose();

        var other = ApprovalId(await CallAsync(writer, "github__merge_pr", new { number = 2 }));
        other.ShouldNotBe(id);
        var tampered = await Should.ThrowAsync<McpProtocolException>(() =>
            CallAsync(writer, "github__merge_pr", new { number = 2 }, new JsonObject { ["flotilla/approval_id"] = id }));
        tampered.Message.ShouldContain($"approval {id} was given for github__merge_pr with other arguments");
        github.CallsTo("merge_pr").ShouldBe(0);

        Text(await CallAsync(writer, "github__merge_pr", new { number = 1 })).ShouldBe("merged #1");
        github.CallsTo("merge_pr").ShouldBe(1);
    }

    [Fact]
    public async Task A_pending_approval_survives_a_restart_and_the_call_runs_once_after_it()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        var id = ApprovalId(await CallAsync(await mcp.ConnectAsync("writer"), "github__merge_pr", new { number = 9 }));

        await mcp.Host.RestartAsync();
        await mcp.WaitForToolsAsync(1);
        (await DecideAsync(mcp, id, "approve")).StatusCode.ShouldBe(HttpStatusCode.OK);
        var writer = await mcp.ConnectAsync("writer");

        Text(await CallAsync(writer, "github__merge_pr", new { number = 9 })).ShouldBe("merged #9");
        Text(await CallAsync(writer, "github__merge_pr", new { number = 9 })).ShouldBe("merged #9");
        github.CallsTo("merge_pr").ShouldBe(1);
    }

    [Fact]
    public async Task A_side_effect_happens_once_for_retries_and_for_ten_concurrent_duplicates()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        var writer = await mcp.ConnectAsync("writer");
        github.Delay = TimeSpan.FromMilliseconds(300);

        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => CallAsync(writer, "github__write_file", new { path = "docs/a.md", content = "hello" })));
        results.ShouldAllBe(r => Text(r) == "wrote 5 characters to docs/a.md");
        github.CallsTo("write_file").ShouldBe(1);

        Text(await CallAsync(writer, "github__write_file", new { content = "hello", path = "docs/a.md" })).ShouldBe("wrote 5 characters to docs/a.md");
        github.CallsTo("write_file").ShouldBe(1, "the same arguments in another key order are the same call");

        var keyed = new JsonObject { ["flotilla/idempotency_key"] = "release-1.2.3" };
        await CallAsync(writer, "github__write_file", new { path = "docs/b.md", content = "x" }, keyed);
        var conflict = await Should.ThrowAsync<McpProtocolException>(() => CallAsync(writer, "github__write_file", new { path = "docs/c.md", content = "y" }, new JsonObject { ["flotilla/idempotency_key"] = "release-1.2.3" }));
        ((int)conflict.ErrorCode).ShouldBe(McpErrors.Conflict);
        github.CallsTo("write_file").ShouldBe(2);
    }

    [Fact]
    public async Task A_call_in_flight_when_flotilla_died_is_unknown_after_the_restart_and_its_retry_is_refused()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        await mcp.Host.StopAsync();

        // What a kill -9 between sending the call and recording its outcome leaves behind: the in-flight row.
        var arguments = new Dictionary<string, JsonElement> { ["path"] = JsonSerializer.SerializeToElement("docs/x.md"), ["content"] = JsonSerializer.SerializeToElement("x") };
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(mcp.Host.DataDirectory, "flotilla.db")}"))
        {
            await connection.OpenAsync(Ct);
            await using var insert = connection.CreateCommand();
            insert.CommandText = """
                INSERT INTO idempotency (agent, key, server, tool, arguments_sha256, state, result, created_at, expires_at)
                VALUES ('writer', 'caller:deploy-7', 'github', 'write_file', $sha, 'in_flight', NULL, $now, $expires)
                """;
            insert.Parameters.AddWithValue("$sha", ToolArguments.Sha256(ToolArguments.Canonical(arguments)));
            insert.Parameters.AddWithValue("$now", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            insert.Parameters.AddWithValue("$expires", DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds());
            await insert.ExecuteNonQueryAsync(Ct);
        }

        await mcp.Host.StartAgainAsync();
        await mcp.WaitForToolsAsync(1);
        var writer = await mcp.ConnectAsync("writer");

        var unknown = await Should.ThrowAsync<McpProtocolException>(() =>
            CallAsync(writer, "github__write_file", new { path = "docs/x.md", content = "x" }, new JsonObject { ["flotilla/idempotency_key"] = "deploy-7" }));
        ((int)unknown.ErrorCode).ShouldBe(McpErrors.OutcomeUnknown);
        unknown.Message.ShouldContain("Outcome unknown, needs a human");
        github.CallsTo("write_file").ShouldBe(0);
    }
}
