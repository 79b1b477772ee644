using System.Net;
using System.Text.Json;
using Flotilla.Testing;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>/mcp through the MCP C# SDK client: what a loop sees, what it may call, and what reaches the servers behind.</summary>
public sealed class McpGatewayTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(FakeMcpServer github, FakeMcpServer files, string gateway = "") => $$"""
        gateway:
          destructive_tools: [deploy_*]
        {{gateway}}
        ---
        agent:
          name: writer
          owner: docs
          mcp_servers:
            - { server: github, tools: [read_file, write_file, merge_pr, { tool: write_file, args: { path: "docs/**" } }] }
            - { server: files, access: read }
        ---
        agent:
          name: reader
          owner: docs
          role: checker
          mcp_servers: [ { server: github, access: read } ]
        ---
        agent: { name: nobody, owner: docs }
        """ + "\n" + McpHost.Server("github", github, "read_only_tools: [read_*]") + McpHost.Server("files", files, "trusted: true");

    [Fact]
    public async Task A_loop_sees_exactly_its_granted_tools_under_stable_names()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);

        var writer = await mcp.ConnectAsync("writer");
        var reader = await mcp.ConnectAsync("reader");
        var nobody = await mcp.ConnectAsync("nobody");

        (await writer.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ShouldBe(
            ["files__fail", "files__fetch_page", "files__read_file", "github__merge_pr", "github__read_file", "github__write_file"]);
        // github is untrusted: its readOnlyHint on fetch_page does not admit it to access: read; read_only_tools does.
        (await reader.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ShouldBe(["github__read_file"]);
        (await nobody.ListToolsAsync(cancellationToken: Ct)).ShouldBeEmpty();

        var listed = (await writer.ListToolsAsync(cancellationToken: Ct)).Single(t => t.Name == "github__merge_pr").ProtocolTool;
        listed.Annotations!.DestructiveHint.ShouldBe(true);
        listed.InputSchema.GetProperty("properties").TryGetProperty("path", out _).ShouldBeTrue();
    }

    [Fact]
    public async Task Every_tool_is_callable_if_and_only_if_it_is_listed_and_a_refused_call_never_reaches_the_server()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        var all = FakeMcpServer.DefaultTools.Select(t => t.Name).ToList();

        foreach (var agent in new[] { "writer", "reader", "nobody" })
        {
            var client = await mcp.ConnectAsync(agent);
            var listed = (await client.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ToHashSet();
            foreach (var (server, fake) in new[] { ("github", github), ("files", files) })
            {
                foreach (var tool in all.Where(t => t is not ("merge_pr" or "fail")))
                {
                    var name = $"{server}__{tool}";
                    var before = fake.CallsTo(tool);
                    var arguments = new Dictionary<string, object?> { ["path"] = "docs/guide.md", ["content"] = "hello" };
                    if (listed.Contains(name))
                    {
                        var result = await client.CallToolAsync(name, arguments, cancellationToken: Ct);
                        fake.CallsTo(tool).ShouldBe(before + 1, $"{agent} calling listed {name}");
                        result.Content.ShouldNotBeEmpty();
                    }
                    else
                    {
                        var refused = await Should.ThrowAsync<McpProtocolException>(() => client.CallToolAsync(name, arguments, cancellationToken: Ct).AsTask(), $"{agent} calling unlisted {name}");
                        ((int)refused.ErrorCode).ShouldBe(-32003, refused.Message);
                        refused.Message.ShouldContain($"agent '{agent}'");
                        fake.CallsTo(tool).ShouldBe(before, $"{agent}'s refused call of {name} reached the server");
                    }
                }
            }
        }
    }

    [Fact]
    public async Task An_argument_rule_narrows_calls_and_a_call_outside_it_never_reaches_the_server()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        var writer = await mcp.ConnectAsync("writer");

        (await writer.CallToolAsync("github__write_file", new Dictionary<string, object?> { ["path"] = "docs/a/b.md", ["content"] = "x" }, cancellationToken: Ct))
            .IsError.ShouldNotBe(true);
        var refused = await Should.ThrowAsync<McpProtocolException>(() =>
            writer.CallToolAsync("github__write_file", new Dictionary<string, object?> { ["path"] = "src/Program.cs", ["content"] = "x" }, cancellationToken: Ct).AsTask());

        refused.Message.ShouldEndWith("agent 'writer' may call 'write_file' on 'github' only with 'path' matching 'docs/**'");
        github.CallsTo("write_file").ShouldBe(1);
    }

    [Fact]
    public async Task No_key_gets_401_pointing_at_protected_resource_metadata_and_the_callers_key_never_reaches_the_server()
    {
        Environment.SetEnvironmentVariable("FLOTILLA_TEST_GITHUB_TOKEN", "upstream-token-0123456789");
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files).Replace("read_only_tools: [read_*]", "read_only_tools: [read_*], auth: { type: bearer, token: \"${env:FLOTILLA_TEST_GITHUB_TOKEN}\" }"), ready: 2);
        using var http = new HttpClient();

        using var anonymous = await http.PostAsync(mcp.Endpoint, new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        anonymous.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        var challenge = anonymous.Headers.WwwAuthenticate.ToString();
        var metadataUrl = $"{mcp.Host.Server.Address.GetLeftPart(UriPartial.Authority)}/.well-known/oauth-protected-resource/mcp";
        challenge.ShouldBe($"Bearer resource_metadata=\"{metadataUrl}\"");
        (await anonymous.Content.ReadAsStringAsync(Ct)).ShouldContain("\"code\":-32001");
        var metadata = JsonDocument.Parse(await http.GetStringAsync(metadataUrl, Ct)).RootElement;
        metadata.GetProperty("resource").GetString().ShouldBe(mcp.Endpoint.ToString());
        metadata.GetProperty("bearer_methods_supported")[0].GetString().ShouldBe("header");

        var writer = await mcp.ConnectAsync("writer");
        await writer.CallToolAsync("github__read_file", new Dictionary<string, object?> { ["path"] = "README.md" }, cancellationToken: Ct);
        github.Received.Single().Authorization.ShouldBe("Bearer upstream-token-0123456789");
    }

    [Fact]
    public async Task A_browser_origin_or_a_rebound_host_is_refused()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        using var http = new HttpClient();
        var key = await mcp.Host.Server.IssueKeyAsync("writer", Ct);

        foreach (var (header, value) in new[] { ("Origin", "https://evil.example"), ("Host", "evil.example") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, mcp.Endpoint)
            {
                Content = new StringContent("""{"jsonrpc":"2.0","id":1,"method":"tools/list"}""", System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            request.Headers.Accept.ParseAdd("application/json, text/event-stream");
            if (header == "Host")
            {
                request.Headers.Host = value;
            }
            else
            {
                request.Headers.Add(header, value);
            }

            using var response = await http.SendAsync(request, Ct);
            response.StatusCode.ShouldBe(HttpStatusCode.Forbidden, header);
        }
    }

    [Fact]
    public async Task Guardrails_redact_a_secret_in_arguments_and_withhold_a_poisoned_result_with_every_verdict_traced()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        const string Guardrails = """
              guardrails:
                mcp_pre_tool: [ { type: secrets-detection, action: redact } ]
                mcp_post_tool: [prompt-injection, secrets-detection]
            """;
        await using var mcp = await McpHost.StartAsync(Fleet(github, files, Guardrails), ready: 2);
        var writer = await mcp.ConnectAsync("writer");

        await writer.CallToolAsync("github__write_file", new Dictionary<string, object?> { ["path"] = "docs/keys.md", ["content"] = "key AKIAIOSFODNN7EXAMPLE" }, cancellationToken: Ct);
        var poisoned = await writer.CallToolAsync("files__fetch_page", new Dictionary<string, object?> { ["path"] = "https://example.invalid" }, cancellationToken: Ct);

        github.Received.Single().Arguments.ShouldNotContain("AKIAIOSFODNN7EXAMPLE");
        poisoned.IsError.ShouldBe(true);
        var text = ((TextContentBlock)poisoned.Content.Single()).Text;
        text.ShouldStartWith("The gateway withheld this tool's result: mcp_post_tool guardrail 'prompt-injection'");
        text.ShouldNotContain("merge PR 42");

        var traces = await mcp.Host.TracesAsync(2);
        var fetch = traces.Single(t => t.GetProperty("tool").GetProperty("name").GetString() == "fetch_page");
        fetch.GetProperty("kind").GetString().ShouldBe("tool_call");
        fetch.GetProperty("agent").GetString().ShouldBe("writer");
        fetch.GetProperty("tool").GetProperty("server").GetString().ShouldBe("files");
        fetch.GetProperty("guardrails").EnumerateArray().ShouldContain(v => v.GetProperty("hook").GetString() == "mcp_post_tool" && v.GetProperty("outcome").GetString() == "blocked");
        var write = traces.Single(t => t.GetProperty("tool").GetProperty("name").GetString() == "write_file");
        write.GetProperty("tool").GetProperty("arguments_sha256").GetString()!.Length.ShouldBe(64);
        write.GetProperty("guardrails").EnumerateArray().ShouldContain(v => v.GetProperty("hook").GetString() == "mcp_pre_tool" && v.GetProperty("outcome").GetString() == "redacted");
        write.TryGetProperty("arguments", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_dead_server_leaves_the_others_listed_its_calls_name_it_and_its_tools_return_when_it_recovers()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        var changed = 0;
        var writer = await mcp.ConnectAsync("writer", options: new McpClientOptions
        {
            ProtocolVersion = "2025-11-25",
            Handlers = new McpClientHandlers
            {
                NotificationHandlers = [new(NotificationMethods.ToolListChangedNotification, (_, _) => { Interlocked.Increment(ref changed); return ValueTask.CompletedTask; })],
            },
        });

        await github.StopAsync();
        var failed = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("github__read_file", new Dictionary<string, object?> { ["path"] = "a" }, cancellationToken: Ct).AsTask());
        ((int)failed.ErrorCode).ShouldBe(-32004);
        failed.Message.ShouldContain("mcp server 'github'");
        var servers = await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<JsonElement>(mcp.Host.Admin, "/api/mcp/servers", Ct);
        var github_ = servers.GetProperty("data").EnumerateArray().Single(s => s.GetProperty("name").GetString() == "github");
        github_.GetProperty("state").GetString().ShouldNotBe("ready");
        github_.GetProperty("failure").GetString().ShouldNotBeNullOrEmpty();

        var started = DateTime.UtcNow;
        (await writer.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ShouldBe(["files__fail", "files__fetch_page", "files__read_file"]);
        (DateTime.UtcNow - started).ShouldBeLessThan(TimeSpan.FromSeconds(5));

        // list_changed is a notification: it may land just after the listing that already reflects the change.
        var notified = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref changed) == 0 && DateTime.UtcNow < notified)
        {
            await Task.Delay(20, Ct);
        }

        Volatile.Read(ref changed).ShouldBeGreaterThan(0);

        await github.RestartAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await writer.ListToolsAsync(cancellationToken: Ct)).Count < 6 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200, Ct);
        }

        (await writer.ListToolsAsync(cancellationToken: Ct)).Count.ShouldBe(6);
        (await writer.CallToolAsync("github__read_file", new Dictionary<string, object?> { ["path"] = "a" }, cancellationToken: Ct)).IsError.ShouldNotBe(true);
    }

    [Fact]
    public async Task A_hanging_server_gets_an_error_naming_it_within_its_timeout_while_listing_stays_prompt()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files).Replace("read_only_tools: [read_*]", "read_only_tools: [read_*], timeout: 500ms"), ready: 2);
        var writer = await mcp.ConnectAsync("writer");
        github.Hang = true;

        var started = DateTime.UtcNow;
        var hung = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("github__read_file", new Dictionary<string, object?> { ["path"] = "a" }, cancellationToken: Ct).AsTask());
        ((int)hung.ErrorCode).ShouldBe(-32004);
        hung.Message.ShouldEndWith("mcp server 'github' did not answer 'read_file' within 0.5 s");
        (DateTime.UtcNow - started).ShouldBeLessThan(TimeSpan.FromSeconds(10));

        (await writer.ListToolsAsync(cancellationToken: Ct)).Count.ShouldBe(6);
        (await writer.CallToolAsync("files__read_file", new Dictionary<string, object?> { ["path"] = "a" }, cancellationToken: Ct)).IsError.ShouldNotBe(true);
    }

    public static TheoryData<string> Protocols => ["2025-06-18", "2025-11-25", "2026-07-28"];

    [Theory]
    [MemberData(nameof(Protocols))]
    public async Task A_new_upstream_tool_reaches_the_caller_with_list_changed(string protocol)
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        var changed = new TaskCompletionSource();
        var writer = await mcp.ConnectAsync("writer", options: new McpClientOptions
        {
            ProtocolVersion = protocol,
            Handlers = new McpClientHandlers
            {
                NotificationHandlers = [new(NotificationMethods.ToolListChangedNotification, (_, _) => { changed.TrySetResult(); return ValueTask.CompletedTask; })],
            },
        });
        writer.NegotiatedProtocolVersion.ShouldBe(protocol);
        (await writer.CallToolAsync("files__read_file", new Dictionary<string, object?> { ["path"] = "a" }, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        using var listening = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        if (protocol == "2026-07-28")
        {
            // Sessionless clients hear of changes on a subscriptions/listen request they hold open.
            var acknowledged = new TaskCompletionSource();
            await using var ack = writer.RegisterNotificationHandler(NotificationMethods.SubscriptionsAcknowledgedNotification, (_, _) => { acknowledged.TrySetResult(); return ValueTask.CompletedTask; });
            var listen = writer.SendRequestAsync(new JsonRpcRequest
            {
                Method = RequestMethods.SubscriptionsListen,
                Params = System.Text.Json.Nodes.JsonNode.Parse("""{"notifications":{"toolsListChanged":true}}"""),
            }, listening.Token);
            await Task.WhenAny(acknowledged.Task, listen, Task.Delay(TimeSpan.FromSeconds(15), Ct));
            listen.IsCompleted.ShouldBeFalse(listen.Exception?.ToString() ?? listen.Status.ToString());
            acknowledged.Task.IsCompleted.ShouldBeTrue();
        }

        await files.AddToolAsync(FakeMcpServer.ReadOnlyTool("search_files"));

        await changed.Task.WaitAsync(TimeSpan.FromSeconds(15), Ct);
        (await writer.ListToolsAsync(cancellationToken: Ct)).Select(t => t.Name).ShouldContain("files__search_files");
        await listening.CancelAsync();
    }

    [Fact]
    public async Task Tool_calls_per_minute_are_limited_per_agent_and_per_server_without_reaching_the_server()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        const string Limits = """
              rate_limits:
                - { applies_per: agent, tool_calls_per_minute: 3 }
                - { applies_per: server, tool_calls_per_minute: 2 }
            """;
        await using var mcp = await McpHost.StartAsync(Fleet(github, files, Limits), ready: 2);
        var writer = await mcp.ConnectAsync("writer");
        var read = new Dictionary<string, object?> { ["path"] = "a" };

        await writer.CallToolAsync("github__read_file", read, cancellationToken: Ct);
        await writer.CallToolAsync("github__read_file", read, cancellationToken: Ct);
        var perServer = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("github__read_file", read, cancellationToken: Ct).AsTask());
        ((int)perServer.ErrorCode).ShouldBe(-32029);
        perServer.Message.ShouldContain("2 tool calls per minute for server 'github'");
        await writer.CallToolAsync("files__read_file", read, cancellationToken: Ct);
        var perAgent = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("files__read_file", read, cancellationToken: Ct).AsTask());
        perAgent.Message.ShouldContain("3 tool calls per minute for agent 'writer'");

        github.CallsTo("read_file").ShouldBe(2);
        files.CallsTo("read_file").ShouldBe(1);
    }

    [Fact]
    public async Task Unknown_tools_and_servers_answer_json_rpc_errors_and_the_endpoint_keeps_serving()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var files = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, files), ready: 2);
        var writer = await mcp.ConnectAsync("writer");

        var unknown = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("github__nope", cancellationToken: Ct).AsTask());
        ((int)unknown.ErrorCode).ShouldBe(-32602);
        unknown.Message.ShouldEndWith("unknown tool 'github__nope'; tools/list shows the tools this agent may call");
        var hostile = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("github__nope\u001b[31m", cancellationToken: Ct).AsTask());
        hostile.Message.ShouldNotContain("\u001b");
        var upstreamError = await Should.ThrowAsync<McpProtocolException>(() => writer.CallToolAsync("files__fail", cancellationToken: Ct).AsTask());
        upstreamError.Message.ShouldEndWith("mcp server 'files' refused 'fail': the fake was told to fail");
        ((int)upstreamError.ErrorCode).ShouldBe(-32602);

        (await writer.ListToolsAsync(cancellationToken: Ct)).Count.ShouldBe(6);
    }
}
