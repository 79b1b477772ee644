using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Mcp.Naming;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Upstreams;

/// <summary>One tool in the catalogue: the server that has it and the tool as that server lists it.</summary>
internal sealed record CatalogTool(string Exposed, McpUpstream Upstream, Tool Tool);

/// <summary>Every ready server's tools under their exposed names; immutable, rebuilt when any server changes.</summary>
internal sealed class ToolCatalog(FrozenDictionary<string, CatalogTool> tools, IReadOnlyList<CatalogTool> ordered)
{
    public static ToolCatalog Empty { get; } = new(FrozenDictionary<string, CatalogTool>.Empty, []);

    public FrozenDictionary<string, CatalogTool> ByName { get; } = tools;

    /// <summary>By exposed name, so a listing is the same whatever order servers answered in.</summary>
    public IReadOnlyList<CatalogTool> Ordered { get; } = ordered;
}

/// <summary>
/// The fleet's MCP servers, connected and kept connected: one <see cref="McpUpstream"/> per <c>mcp_server</c>. A fleet
/// change starts new servers, stops removed ones and restarts those whose definition changed; unchanged ones keep their
/// session. <see cref="CatalogChanged"/> tells the endpoint to send <c>notifications/tools/list_changed</c>.
/// </summary>
internal sealed class McpUpstreams : IHostedService, IAsyncDisposable
{
    private readonly LiveFleet _fleet;
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private FrozenDictionary<string, McpUpstream> _upstreams = FrozenDictionary<string, McpUpstream>.Empty;
    private ToolCatalog _catalog = ToolCatalog.Empty;
    private bool _started;

    private readonly Credentials.TokenVault _vault;

    public McpUpstreams(LiveFleet fleet, Credentials.TokenVault vault, ILoggerFactory loggers, TimeProvider time)
    {
        _fleet = fleet;
        _vault = vault;
        _loggers = loggers;
        _time = time;
        vault.Stored += server =>
        {
            if (TryGet(server, out var upstream) && upstream.State != UpstreamState.Ready)
            {
                upstream.RetryNow();
            }
        };
    }

    public ToolCatalog Catalog => Volatile.Read(ref _catalog);

    public event Action? CatalogChanged;

    public bool TryGet(string server, out McpUpstream upstream) => Volatile.Read(ref _upstreams).TryGetValue(server, out upstream!);

    public IReadOnlyCollection<McpUpstream> All => Volatile.Read(ref _upstreams).Values;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _fleet.Applied += OnApplied;
        lock (_gate)
        {
            _started = true;
        }

        Reconcile(_fleet.Current.Config.McpServers);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _fleet.Applied -= OnApplied;
        FrozenDictionary<string, McpUpstream> all;
        lock (_gate)
        {
            _started = false;
            all = _upstreams;
            _upstreams = FrozenDictionary<string, McpUpstream>.Empty;
        }

        await Task.WhenAll(all.Values.Select(u => u.DisposeAsync().AsTask()));
    }

    public ValueTask DisposeAsync() => new(StopAsync(CancellationToken.None));

    private void OnApplied(FleetSnapshot snapshot) => Reconcile(snapshot.Config.McpServers);

    private void Reconcile(IReadOnlyList<McpServerConfig> servers)
    {
        var retired = new List<McpUpstream>();
        var started = new List<McpUpstream>();
        lock (_gate)
        {
            if (!_started)
            {
                return;
            }

            var next = new Dictionary<string, McpUpstream>(StringComparer.Ordinal);
            foreach (var server in servers)
            {
                if (_upstreams.TryGetValue(server.Name, out var existing) && SameDefinition(existing.Config, server))
                {
                    next[server.Name] = existing;
                    continue;
                }

                var upstream = new McpUpstream(server, _vault, _loggers, _time);
                upstream.Changed += _ => Rebuild();
                next[server.Name] = upstream;
                started.Add(upstream);
            }

            retired.AddRange(_upstreams.Values.Where(u => !next.TryGetValue(u.Name, out var kept) || !ReferenceEquals(kept, u)));
            _upstreams = next.ToFrozenDictionary(StringComparer.Ordinal);
        }

        foreach (var upstream in started)
        {
            upstream.Start();
        }

        foreach (var upstream in retired)
        {
            _ = upstream.DisposeAsync().AsTask();
        }

        Rebuild();
    }

    /// <summary>Only what changes the session restarts it; grants, trust and read-only lists apply without a reconnect.</summary>
    private static bool SameDefinition(McpServerConfig a, McpServerConfig b) =>
        a.Transport == b.Transport && a.Url == b.Url && a.Command.SequenceEqual(b.Command) && a.Auth == b.Auth && a.Timeout == b.Timeout
        && a.Env.Count == b.Env.Count && a.Env.All(e => b.Env.TryGetValue(e.Key, out var v) && v == e.Value);

    private void Rebuild()
    {
        var tools = new Dictionary<string, CatalogTool>(StringComparer.Ordinal);
        foreach (var upstream in Volatile.Read(ref _upstreams).Values)
        {
            if (upstream.State != UpstreamState.Ready)
            {
                continue;
            }

            foreach (var tool in upstream.Tools)
            {
                var exposed = ToolNames.Expose(upstream.Name, tool.Name);
                tools.TryAdd(exposed, new CatalogTool(exposed, upstream, tool));
            }
        }

        var catalog = new ToolCatalog(tools.ToFrozenDictionary(StringComparer.Ordinal), [.. tools.Values.OrderBy(t => t.Exposed, StringComparer.Ordinal)]);
        var before = Interlocked.Exchange(ref _catalog, catalog);
        if (!before.ByName.Keys.Order(StringComparer.Ordinal).SequenceEqual(catalog.ByName.Keys.Order(StringComparer.Ordinal)))
        {
            CatalogChanged?.Invoke();
        }
    }
}
