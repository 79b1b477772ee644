using System.Net.Http.Json;
using System.Text.Json;
using Flotilla.Mcp.Calls;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>
/// Real MCP servers from npm behind Flotilla: @modelcontextprotocol/server-everything over stdio and streamable HTTP,
/// and @modelcontextprotocol/server-filesystem over stdio, with the MCP C# SDK client as the loop.
/// </summary>
public sealed class NpmServerTests : IDisposable
{
    private readonly string _files = Path.Combine(Path.GetTempPath(), "flotilla-mcp-files", Guid.NewGuid().ToString("N"));
    private readonly string _marker = Guid.NewGuid().ToString("N");

    public NpmServerTests() => Directory.CreateDirectory(_files);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string Fleet(Uri? http = null) => $$"""
        gateway:
          mcp: { approval_ttl: 1h }
        ---
        mcp_servers:
          - { name: everything, command: [node, "{{NpmServers.Everything}}", stdio], env: { GREETING: hello, FLOTILLA_TEST_MARKER: "{{_marker}}" }, timeout: 20s }
          - { name: files, command: [node, "{{NpmServers.Filesystem}}", "{{_files}}"], trusted: true, timeout: 20s }
        {{(http is null ? "" : $"  - {{ name: everything-http, url: \"{http}\" }}")}}
        ---
        agent:
          name: loop
          owner: qa
          mcp_servers: [everything, files{{(http is null ? "" : ", everything-http")}}]
        ---
        agent:
          name: checker
          owner: qa
          role: checker
          mcp_servers: [ { server: files, access: read } ]
        """;

    private static string Text(CallToolResult result) => string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    [Fact]
    public async Task Stdio_and_http_servers_are_listed_under_stable_names_and_answer_calls()
    {
        var (process, url) = await NpmServers.StartEverythingHttpAsync();
        try
        {
            await using var mcp = await McpHost.StartAsync(Fleet(url), ready: 3);
            var loop = await mcp.ConnectAsync("loop");

            var tools = (await loop.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ToList();
            tools.ShouldContain("everything__echo");
            tools.ShouldContain("everything-http__echo");
            tools.ShouldContain("files__read_text_file");
            tools.ShouldBe(tools.Order(StringComparer.Ordinal).ToList(), "listed in a stable order");
            Text(await loop.CallToolAsync("everything__echo", new Dictionary<string, object?> { ["message"] = "over stdio" }, cancellationToken: Ct)).ShouldContain("over stdio");
            Text(await loop.CallToolAsync("everything-http__echo", new Dictionary<string, object?> { ["message"] = "over http" }, cancellationToken: Ct)).ShouldContain("over http");

            var checker = await mcp.ConnectAsync("checker");
            var readOnly = (await checker.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ToList();
            readOnly.ShouldContain("files__read_text_file");
            readOnly.ShouldNotContain("files__write_file");
            readOnly.ShouldNotContain("files__move_file");
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(Ct);
        }
    }

    [Fact]
    public async Task The_mcp_inspector_cli_lists_and_calls_tools_through_the_gateway()
    {
        await using var mcp = await McpHost.StartAsync(Fleet(), ready: 2);
        var key = await mcp.Host.Server.IssueKeyAsync("loop", Ct);

        var (listed, list) = await NpmServers.InspectorAsync(mcp.Endpoint, key, "--method", "tools/list");
        var (called, call) = await NpmServers.InspectorAsync(mcp.Endpoint, key, "--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=from the inspector");
        var (refused, _) = await NpmServers.InspectorAsync(mcp.Endpoint, "flt_not-a-key", "--method", "tools/list");

        listed.ShouldBe(0, list);
        list.ShouldContain("\"everything__echo\"");
        list.ShouldContain("\"files__read_text_file\"");
        called.ShouldBe(0, call);
        call.ShouldContain("from the inspector");
        refused.ShouldNotBe(0);
    }

    [Fact]
    public async Task Prompts_and_resources_of_granted_servers_are_relayed_and_others_are_not()
    {
        await using var mcp = await McpHost.StartAsync(Fleet(), ready: 2);
        var loop = await mcp.ConnectAsync("loop");
        var checker = await mcp.ConnectAsync("checker");

        var prompts = (await loop.ListPromptsAsync(cancellationToken: Ct)).Select(p => p.Name).ToList();
        prompts.ShouldContain("everything__simple-prompt");
        var prompt = await loop.GetPromptAsync("everything__simple-prompt", cancellationToken: Ct);
        prompt.Messages.ShouldNotBeEmpty();
        var resources = await loop.ListResourcesAsync(cancellationToken: Ct);
        var document = resources.First(r => r.Uri.StartsWith("demo://resource/static/document/", StringComparison.Ordinal));
        (await loop.ReadResourceAsync(document.Uri, cancellationToken: Ct)).Contents.ShouldNotBeEmpty();

        (await checker.ListPromptsAsync(cancellationToken: Ct)).ShouldNotContain(p => p.Name.StartsWith("everything__", StringComparison.Ordinal));
        var refused = await Should.ThrowAsync<McpProtocolException>(() => checker.ReadResourceAsync(document.Uri, cancellationToken: Ct).AsTask());
        ((int)refused.ErrorCode).ShouldBe(-32602);
    }

    [Fact]
    public async Task A_stdio_server_gets_only_the_environment_the_fleet_declares()
    {
        Environment.SetEnvironmentVariable("FLOTILLA_TEST_INHERITED_SECRET", "do-not-pass-0123456789");
        await using var mcp = await McpHost.StartAsync(Fleet(), ready: 2);
        var loop = await mcp.ConnectAsync("loop");

        var environment = Text(await loop.CallToolAsync("everything__get-env", cancellationToken: Ct));

        environment.ShouldContain("GREETING");
        environment.ShouldContain("PATH");
        environment.ShouldNotContain("FLOTILLA_TEST_INHERITED_SECRET");
        environment.ShouldNotContain("do-not-pass-0123456789");
    }

    [Fact]
    public async Task The_filesystem_servers_destructive_write_waits_for_approval_then_writes_once()
    {
        await using var mcp = await McpHost.StartAsync(Fleet(), ready: 2);
        var loop = await mcp.ConnectAsync("loop");
        var target = Path.Combine(_files, "notes.md");
        var arguments = new Dictionary<string, object?> { ["path"] = target, ["content"] = "release notes" };

        var waiting = await loop.CallToolAsync("files__write_file", arguments, cancellationToken: Ct);
        waiting.IsError.ShouldBe(true);
        File.Exists(target).ShouldBeFalse("a destructive call must not run before approval");
        var id = waiting.Meta!["flotilla/approval"]!["id"]!.GetValue<string>();

        using (var approve = await mcp.Host.Admin.PostAsync($"/api/approvals/{id}/approve", null, Ct))
        {
            approve.EnsureSuccessStatusCode();
        }

        (await loop.CallToolAsync("files__write_file", arguments, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        (await File.ReadAllTextAsync(target, Ct)).ShouldBe("release notes");
        File.WriteAllText(target, "changed by a human since");
        (await loop.CallToolAsync("files__write_file", arguments, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        (await File.ReadAllTextAsync(target, Ct)).ShouldBe("changed by a human since", "the retry replays the first result; it does not write again");
    }

    [Fact]
    public async Task A_stdio_server_killed_mid_call_is_named_in_the_error_and_restarted()
    {
        await using var mcp = await McpHost.StartAsync(Fleet(), ready: 2);
        var loop = await mcp.ConnectAsync("loop");
        var before = NpmServers.ProcessesWith(_marker);
        before.Count.ShouldBe(1, "one server-everything process carries this test's marker");

        var call = loop.CallToolAsync("everything__trigger-long-running-operation", new Dictionary<string, object?> { ["duration"] = 20, ["steps"] = 20 }, cancellationToken: Ct).AsTask();
        await Task.Delay(1000, Ct);
        System.Diagnostics.Process.GetProcessById(before[0]).Kill();

        var failed = await Should.ThrowAsync<McpProtocolException>(() => call);
        ((int)failed.ErrorCode).ShouldBe(McpErrors.Unavailable);
        failed.Message.ShouldContain("mcp server 'everything'");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(await loop.ListToolsAsync(cancellationToken: Ct)).Any(t => t.Name == "everything__echo") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }

        Text(await loop.CallToolAsync("everything__echo", new Dictionary<string, object?> { ["message"] = "back" }, cancellationToken: Ct)).ShouldContain("back");
        NpmServers.ProcessesWith(_marker).ShouldNotContain(before[0]);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_files, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
