using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using ModelContextProtocol.Client;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>Flotilla serving a fleet of fake MCP servers, and MCP SDK clients connected to its <c>/mcp</c> as the fleet's agents.</summary>
internal sealed class McpHost : IAsyncDisposable
{
    private readonly List<McpClient> _clients = [];

    private McpHost(GatewayHost host) => Host = host;

    public GatewayHost Host { get; }

    public Uri Endpoint => new(Host.Server.Address, "mcp");

    /// <summary>Starts Flotilla with <paramref name="yaml"/> (servers, agents, gateway) and waits until <paramref name="ready"/> servers answer.</summary>
    public static async Task<McpHost> StartAsync(string yaml, int ready, TimeProvider? time = null)
    {
        var host = new McpHost(await GatewayHost.StartAsync(yaml, time));
        await host.WaitForToolsAsync(ready);
        return host;
    }

    /// <summary>An MCP SDK client connected to /mcp as <paramref name="agent"/>, with a newly issued key.</summary>
    public async Task<McpClient> ConnectAsync(string agent, IDictionary<string, string>? headers = null, McpClientOptions? options = null)
    {
        var key = await Host.Server.IssueKeyAsync(agent);
        var all = new Dictionary<string, string>(headers ?? new Dictionary<string, string>()) { ["Authorization"] = "Bearer " + key };
        var client = await McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = Endpoint,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = all,
        }), options, cancellationToken: TestContext.Current.CancellationToken);
        _clients.Add(client);
        return client;
    }

    /// <summary>Waits until the gateway's catalogue holds tools of <paramref name="servers"/> servers.</summary>
    public async Task WaitForToolsAsync(int servers)
    {
        var upstreams = (Flotilla.Mcp.Upstreams.McpUpstreams)Host.Server.Services.GetService(typeof(Flotilla.Mcp.Upstreams.McpUpstreams))!;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (upstreams.All.Count(u => u.State == Flotilla.Mcp.Upstreams.UpstreamState.Ready) < servers)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("MCP servers not ready: " + string.Join("; ", upstreams.All.Select(u => $"{u.Name} {u.State} {u.Failure}")));
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    public static string Server(string name, FakeMcpServer fake, string extra = "") =>
        $"---\nmcp_server: {{ name: {name}, url: \"{fake.Url}\"{(extra.Length > 0 ? ", " + extra : "")} }}\n";

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync();
        }

        await Host.DisposeAsync();
    }
}
