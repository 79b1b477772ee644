using Flotilla.Fleet;

namespace Flotilla.Server.Hosting;

/// <summary>
/// Fleet keys this build reads and validates but does not act on yet. <c>serve</c> warns once per key present in the
/// loaded fleet, so nobody mistakes a declared control for an enforced one. docs/guardrails.md and docs/fleet-file.md
/// list the same keys; the list shrinks as the MCP gateway and the harness land.
/// </summary>
internal static class UnenforcedKeys
{
    private const string McpGateway = "the MCP gateway that enforces it is not built yet, so no tool call is governed by it";
    private const string Harness = "the harness that acts on it is not built yet";

    public static IEnumerable<string> In(FleetConfig fleet)
    {
        var gateway = fleet.Gateway;
        if (gateway.Guardrails.McpPreTool.Count > 0)
        {
            yield return $"gateway.guardrails.mcp_pre_tool is parsed but not enforced: {McpGateway}";
        }

        if (gateway.Guardrails.McpPostTool.Count > 0)
        {
            yield return $"gateway.guardrails.mcp_post_tool is parsed but not enforced: {McpGateway}";
        }

        if (gateway.DestructiveTools.Count > 0)
        {
            yield return $"gateway.destructive_tools is parsed but not enforced (no approval gate yet): {McpGateway}";
        }

        if (fleet.McpServers.Count > 0)
        {
            yield return $"mcp_server ({fleet.McpServers.Count} declared) is parsed but not served: {McpGateway}";
        }

        var agents = fleet.Agents;
        if (agents.Any(a => a.McpServers.Count > 0))
        {
            yield return $"agent.mcp_servers (tool grants) is parsed but not enforced: {McpGateway}";
        }

        if (agents.Any(a => a.Owns.Count > 0))
        {
            yield return $"agent.owns (artifact ownership) is parsed but not enforced: {McpGateway}";
        }

        if (agents.Any(a => a.Trigger?.Schedule is not null))
        {
            yield return $"agent.trigger.schedule is parsed but no loop runs on it: {Harness}";
        }

        if (agents.Any(a => a.Harness != HarnessConfig.Default))
        {
            yield return $"agent.harness (max_steps, max_tokens_per_run, timeout_seconds) is parsed but not enforced: {Harness}";
        }

        if (agents.Any(a => a.Subagents.Count > 0))
        {
            yield return $"agent.subagents is parsed but not run: {Harness}";
        }

        if (agents.Any(a => a.Instructions is not null || a.Skills.Count > 0))
        {
            yield return $"agent.instructions and agent.skills are parsed but not loaded: {Harness}";
        }
    }
}
