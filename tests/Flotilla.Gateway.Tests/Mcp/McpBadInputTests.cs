using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Flotilla.Testing;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>Bad input on /mcp gets a JSON-RPC error in the protocol's own shape, and the endpoint keeps serving.</summary>
public sealed class McpBadInputTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, int> Cases => new()
    {
        { "not json", "{not json", -32600 },
        { "truncated", """{"jsonrpc":"2.0","id":1,"method":"tools/li""", -32600 },
        { "unknown method", """{"jsonrpc":"2.0","id":1,"method":"tools/destroy","params":{}}""", -32601 },
        { "call without a name", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}""", -32602 },
        { "arguments not an object", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__read_file","arguments":[1,2]}}""", -32602 },
        { "deep nesting", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__read_file","arguments":{"path":""" + new string('[', 200) + new string(']', 200) + "}}}", -32600 },
        { "unpaired surrogate", """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__\ud800","arguments":{}}}""", -32602 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Malformed_json_rpc_gets_a_json_rpc_error_and_the_endpoint_keeps_serving(string label, string body, int code)
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github), ready: 1);
        using var http = await ClientAsync(mcp);
        await InitializeAsync(http, mcp);

        using var response = await http.PostAsync(mcp.Endpoint, Json(body), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var error = Error(text);

        error.GetProperty("code").GetInt32().ShouldBe(code, $"{label}: {text}");
        var message = error.GetProperty("message").GetString()!;
        message.Length.ShouldBeLessThanOrEqualTo(1000, label);
        message.ShouldNotContain("\u001b");
        await StillServesAsync(mcp, github);
    }

    [Fact]
    public async Task An_oversize_message_is_refused_without_reaching_a_server()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, "limits: { max_request_body_bytes: 65536 }"), ready: 1);
        using var http = await ClientAsync(mcp);
        var huge = """{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__write_file","arguments":{"path":"a","content":" """.TrimEnd() + new string('x', 200_000) + "\"}}}";

        using var response = await http.PostAsync(mcp.Endpoint, Json(huge), Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.RequestEntityTooLarge);
        Error(await response.Content.ReadAsStringAsync(Ct)).GetProperty("message").GetString()!.ShouldContain("65536");
        github.CallsTo("write_file").ShouldBe(0);
        await StillServesAsync(mcp, github);
    }

    private static string Fleet(FakeMcpServer github, string gateway = "") => $$"""
        gateway: { {{gateway}} }
        ---
        agent: { name: writer, owner: docs, mcp_servers: [github] }
        """ + "\n" + McpHost.Server("github", github);

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static async Task<HttpClient> ClientAsync(McpHost mcp)
    {
        var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await mcp.Host.Server.IssueKeyAsync("writer", Ct));
        http.DefaultRequestHeaders.Accept.ParseAdd("application/json");
        http.DefaultRequestHeaders.Accept.ParseAdd("text/event-stream");
        http.DefaultRequestHeaders.Add("MCP-Protocol-Version", "2025-11-25");
        return http;
    }

    /// <summary>The initialize handshake over raw HTTP; the session id is sent on every later request.</summary>
    private static async Task InitializeAsync(HttpClient http, McpHost mcp)
    {
        const string Initialize = """{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}""";
        using var response = await http.PostAsync(mcp.Endpoint, Json(Initialize), Ct);
        response.EnsureSuccessStatusCode();
        http.DefaultRequestHeaders.Add("Mcp-Session-Id", response.Headers.GetValues("Mcp-Session-Id").Single());
        using var initialized = await http.PostAsync(mcp.Endpoint, Json("""{"jsonrpc":"2.0","method":"notifications/initialized"}"""), Ct);
        initialized.EnsureSuccessStatusCode();
    }

    /// <summary>The JSON-RPC error of an answer sent as JSON or as one SSE event.</summary>
    private static JsonElement Error(string text)
    {
        var json = text.TrimStart().StartsWith('{') ? text : string.Join("", text.Split('\n').Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => l[5..]));
        return JsonDocument.Parse(json).RootElement.GetProperty("error");
    }

    private static async Task StillServesAsync(McpHost mcp, FakeMcpServer github)
    {
        var client = await mcp.ConnectAsync("writer");
        (await client.ListToolsAsync(cancellationToken: Ct)).Count.ShouldBeGreaterThan(0);
        github.CallsTo("read_file").ShouldBe(0);
    }
}
