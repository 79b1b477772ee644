using Flotilla.Fleet;
using Flotilla.Mcp.Upstreams;
using Flotilla.Storage.Traces;

namespace Flotilla.Mcp.Grants;

/// <summary>"Which loops touch this?" for one artifact: its owner, who could write it, and who did.</summary>
/// <param name="Owner">The agent whose <c>owns:</c> claims it (null: unclaimed; then nobody is refused).</param>
/// <param name="Writes">How a write to it is recognised.</param>
/// <param name="CanWrite">Agents whose grants admit a tool that writes it (the owner included), with those tools.</param>
/// <param name="Wrote">Agents that called such a tool, from the traces kept: calls, refused calls, the last one.</param>
public sealed record ArtifactReport(string Name, string? Owner, IReadOnlyList<ArtifactWrite> Writes, IReadOnlyList<ArtifactGrantee> CanWrite, IReadOnlyList<ArtifactWriter> Wrote);

public sealed record ArtifactGrantee(string Agent, IReadOnlyList<string> Tools, bool IsOwner);

public sealed record ArtifactWriter(string Agent, int Calls, int Refused, DateTimeOffset LastAt);

/// <summary>Answers <c>GET /api/artifacts/{name}</c> and <c>./flotilla who-touches</c> from the fleet, the grants and the traces.</summary>
public sealed class ArtifactDirectory
{
    private readonly LiveFleet _fleet;
    private readonly ITraceStore _traces;
    private readonly McpUpstreams _upstreams;

    internal ArtifactDirectory(LiveFleet fleet, ITraceStore traces, McpUpstreams upstreams)
    {
        _fleet = fleet;
        _traces = traces;
        _upstreams = upstreams;
    }

    /// <summary>Traces read per lookup (newest first).</summary>
    public const int TraceWindow = 10_000;

    public async Task<ArtifactReport?> DescribeAsync(string name, CancellationToken cancellationToken)
    {
        var config = _fleet.Current.Config;
        var artifact = config.Gateway.Artifacts.FirstOrDefault(a => a.Name == name);
        var owner = config.Agents.FirstOrDefault(a => a.Owns.Contains(name))?.Name;
        if (artifact is null && owner is null)
        {
            return null;
        }

        var writes = artifact?.Writes ?? [];
        var canWrite = new List<ArtifactGrantee>();
        foreach (var agent in config.Agents)
        {
            var tools = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var write in writes)
            {
                if (config.FindMcpServer(write.Server) is not { } server)
                {
                    continue;
                }

                // The server's own tool list when it is connected (annotations count), else the tool names the artifact names.
                var listed = _upstreams.TryGet(server.Name, out var upstream) && upstream.State == UpstreamState.Ready
                    ? upstream.Tools.Where(t => Glob.IsMatchAny(write.Tools, t.Name)).Select(t => (t.Name, t.Annotations)).ToList()
                    : write.Tools.Where(t => !Glob.HasWildcard(t)).Select(t => (Name: t, Annotations: (ModelContextProtocol.Protocol.ToolAnnotations?)null)).ToList();
                foreach (var (tool, annotations) in listed)
                {
                    if (ToolPolicy.Decide(agent, server, tool, annotations, config.Gateway.DestructiveTools) is { Allowed: true, ReadOnly: false })
                    {
                        tools.Add($"{server.Name}__{tool}");
                    }
                }
            }

            if (tools.Count > 0 || agent.Name == owner)
            {
                canWrite.Add(new ArtifactGrantee(agent.Name, [.. tools], agent.Name == owner));
            }
        }

        var calls = await _traces.QueryAsync(new TraceQuery(Artifact: name, Limit: TraceWindow), cancellationToken);
        var wrote = calls.Where(t => t.Agent is not null)
            .GroupBy(t => t.Agent!)
            .Select(g => new ArtifactWriter(g.Key, g.Count(), g.Count(t => t.Status >= 400), g.Max(t => t.StartedAt)))
            .OrderByDescending(w => w.LastAt)
            .ToList();
        return new ArtifactReport(name, owner, writes, canWrite, wrote);
    }
}
