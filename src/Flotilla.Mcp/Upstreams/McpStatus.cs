namespace Flotilla.Mcp.Upstreams;

/// <summary>One MCP server as an operator sees it: how it is reached, whether it answers, and why not.</summary>
public sealed record McpServerStatus(string Name, string Transport, string State, int Tools, int Prompts, int Resources, string? Failure);

/// <summary>The state of the fleet's MCP servers, for <c>GET /api/mcp/servers</c> and <c>./flotilla mcp-servers</c>.</summary>
public sealed class McpStatus
{
    private readonly McpUpstreams _upstreams;

    internal McpStatus(McpUpstreams upstreams) => _upstreams = upstreams;

    public IReadOnlyList<McpServerStatus> Servers() =>
        [.. _upstreams.All.OrderBy(u => u.Name, StringComparer.Ordinal).Select(u => new McpServerStatus(
            u.Name, u.Config.Transport.ToString().ToLowerInvariant(), u.State.ToString().ToLowerInvariant(), u.Tools.Count, u.Prompts.Count, u.Resources.Count, u.Failure))];
}
