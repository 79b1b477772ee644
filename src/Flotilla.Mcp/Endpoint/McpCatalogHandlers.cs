using System.Security.Claims;
using Flotilla.Fleet;
using Flotilla.Mcp.Calls;
using Flotilla.Mcp.Grants;
using Flotilla.Mcp.Naming;
using Flotilla.Mcp.Upstreams;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Endpoint;

/// <summary>
/// What a caller sees: the tools it may call (the same decision as <c>tools/call</c>, so listed ⇔ callable), and the
/// prompts and resources of the servers it holds a grant on. Answered from the catalogue in memory, so a dead or hanging
/// server never slows a listing: its tools are simply absent until it answers again.
/// </summary>
internal sealed class McpCatalogHandlers(LiveFleet fleet, McpUpstreams upstreams)
{
    public ListToolsResult ListTools(ClaimsPrincipal? user)
    {
        var snapshot = fleet.Current;
        var agent = AgentOf(snapshot, user);
        var tools = new List<Tool>();
        foreach (var entry in upstreams.Catalog.Ordered)
        {
            var server = entry.Upstream.ConfigIn(snapshot);
            if (ToolPolicy.Decide(agent, server, entry.Tool.Name, entry.Tool.Annotations, snapshot.Config.Gateway.DestructiveTools).Allowed)
            {
                tools.Add(Renamed(entry.Tool, entry.Exposed));
            }
        }

        return new ListToolsResult { Tools = tools };
    }

    public ListPromptsResult ListPrompts(ClaimsPrincipal? user)
    {
        var snapshot = fleet.Current;
        var agent = AgentOf(snapshot, user);
        var prompts = new List<Prompt>();
        foreach (var upstream in Granted(agent))
        {
            prompts.AddRange(upstream.Prompts.Select(p => new Prompt
            {
                Name = ToolNames.Expose(upstream.Name, p.Name), Title = p.Title, Description = p.Description, Arguments = p.Arguments, Icons = p.Icons, Meta = p.Meta,
            }));
        }

        return new ListPromptsResult { Prompts = [.. prompts.OrderBy(p => p.Name, StringComparer.Ordinal)] };
    }

    public async ValueTask<GetPromptResult> GetPromptAsync(ClaimsPrincipal? user, GetPromptRequestParams request, CancellationToken cancellationToken)
    {
        var agent = AgentOf(fleet.Current, user);
        foreach (var upstream in Granted(agent))
        {
            var prompt = upstream.Prompts.FirstOrDefault(p => ToolNames.Expose(upstream.Name, p.Name) == request.Name);
            if (prompt is not null)
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(upstream.Config.Timeout);
                return await Relay(upstream, () => upstream.Client.GetPromptAsync(new GetPromptRequestParams { Name = prompt.Name, Arguments = request.Arguments }, timeout.Token));
            }
        }

        throw new McpProtocolException($"unknown prompt '{DisplayText.Safe(request.Name ?? "", 160)}'; prompts/list shows the prompts this agent may use", McpErrorCode.InvalidParams);
    }

    public ListResourcesResult ListResources(ClaimsPrincipal? user)
    {
        var agent = AgentOf(fleet.Current, user);
        return new ListResourcesResult { Resources = [.. Granted(agent).SelectMany(u => u.Resources).OrderBy(r => r.Uri, StringComparer.Ordinal)] };
    }

    public async ValueTask<ReadResourceResult> ReadResourceAsync(ClaimsPrincipal? user, ReadResourceRequestParams request, CancellationToken cancellationToken)
    {
        var agent = AgentOf(fleet.Current, user);
        foreach (var upstream in Granted(agent))
        {
            if (upstream.Resources.Any(r => r.Uri == request.Uri))
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(upstream.Config.Timeout);
                return await Relay(upstream, () => upstream.Client.ReadResourceAsync(new ReadResourceRequestParams { Uri = request.Uri }, timeout.Token));
            }
        }

        throw new McpProtocolException($"unknown resource '{DisplayText.Safe(request.Uri ?? "", 300)}'; resources/list shows the resources this agent may read", McpErrorCode.InvalidParams);
    }

    private static async ValueTask<T> Relay<T>(McpUpstream upstream, Func<ValueTask<T>> send)
    {
        try
        {
            return await send();
        }
        catch (UpstreamUnavailableException e)
        {
            throw McpErrors.Error(McpErrors.Unavailable, e.Message);
        }
        catch (OperationCanceledException)
        {
            throw McpErrors.Error(McpErrors.Unavailable, $"mcp server '{upstream.Name}' did not answer within {upstream.Config.Timeout.TotalSeconds:0.###} s");
        }
        catch (McpProtocolException e)
        {
            throw new McpProtocolException($"mcp server '{upstream.Name}': {ToolCallPipeline.RemoteMessage(e)}", e.ErrorCode);
        }
    }

    /// <summary>Ready servers the agent holds any grant on.</summary>
    private IEnumerable<McpUpstream> Granted(AgentConfig agent) =>
        upstreams.All.Where(u => u.State == UpstreamState.Ready && agent.McpServers.Any(g => g.Server == u.Name)).OrderBy(u => u.Name, StringComparer.Ordinal);

    private static AgentConfig AgentOf(FleetSnapshot snapshot, ClaimsPrincipal? user) =>
        McpInbound.AgentOf(user) is { } name && snapshot.Agents.TryGetValue(name, out var agent)
            ? agent
            : throw McpErrors.Error(McpErrors.Forbidden, "the caller's agent is not in the fleet; present an agent key of a declared agent");

    private static Tool Renamed(Tool tool, string exposed) => new()
    {
        Name = exposed,
        Title = tool.Title,
        Description = tool.Description,
        InputSchema = tool.InputSchema,
        OutputSchema = tool.OutputSchema,
        Annotations = tool.Annotations,
        Icons = tool.Icons,
        Meta = tool.Meta,
    };
}
