using System.Text.Json;
using Flotilla.Fleet;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Grants;

/// <summary>What the fleet makes of one tool of one server for one agent.</summary>
/// <param name="Allowed">The agent may see and call it.</param>
/// <param name="Refusal">Why not, naming the missing grant.</param>
/// <param name="Grant">The grant that admits it (its argument rules apply at call time).</param>
/// <param name="ReadOnly">The fleet counts it as read-only (no side effects: no idempotency key, admitted by access: read).</param>
/// <param name="Destructive">It needs a human's approval before it runs.</param>
public readonly record struct ToolDecision(bool Allowed, string? Refusal, McpGrant? Grant, bool ReadOnly, bool Destructive);

/// <summary>
/// The one decision for <c>tools/list</c> and <c>tools/call</c>: a tool is listed if and only if it may be called. Read-only
/// is the fleet's word (<c>read_only_tools</c>) or a trusted server's <c>readOnlyHint</c>; destructive is the org-wide
/// <c>destructive_tools</c> list or any server's <c>destructiveHint: true</c> (without <c>readOnlyHint</c>). An untrusted
/// server's annotations can make a tool destructive but never read-only: they may only tighten.
/// </summary>
public static class ToolPolicy
{
    public static ToolDecision Decide(AgentConfig agent, McpServerConfig server, string tool, ToolAnnotations? annotations, IReadOnlyList<string> destructiveTools)
    {
        var destructive = Glob.IsMatchAny(destructiveTools, tool) || (annotations?.DestructiveHint == true && annotations.ReadOnlyHint != true);
        var readOnly = !destructive && (Glob.IsMatchAny(server.ReadOnlyTools, tool) || (server.Trusted && annotations?.ReadOnlyHint == true));
        string? refusal = null;
        foreach (var grant in agent.McpServers)
        {
            if (grant.Server != server.Name)
            {
                continue;
            }

            if (grant.Tools.Count > 0 && !Glob.IsMatchAny(grant.Tools, tool))
            {
                refusal ??= $"agent '{agent.Name}' has no grant for tool '{tool}' on '{server.Name}': its grant there lists only {string.Join(", ", grant.Tools)}";
            }
            else if (Glob.IsMatchAny(grant.Deny, tool))
            {
                refusal ??= $"agent '{agent.Name}' is denied tool '{tool}' on '{server.Name}' by its grant's deny: [{string.Join(", ", grant.Deny)}]";
            }
            else if (grant.Access == McpAccess.Read && !readOnly)
            {
                refusal ??= $"agent '{agent.Name}' holds only access: read on '{server.Name}', and '{tool}' is not read-only" +
                    (destructive ? " (it is destructive)" : " (list it under the server's read_only_tools if it is)");
            }
            else
            {
                return new ToolDecision(true, null, grant, readOnly, destructive);
            }
        }

        return new ToolDecision(false, refusal ?? $"agent '{agent.Name}' holds no grant on mcp server '{server.Name}'; add it to the agent's mcp_servers", null, readOnly, destructive);
    }

    /// <summary>
    /// A grant's argument rules for <paramref name="tool"/>: every named argument must be a string matching its glob. Null
    /// when the call is admitted, else why not.
    /// </summary>
    public static string? CheckArguments(AgentConfig agent, McpGrant grant, string tool, IReadOnlyDictionary<string, JsonElement>? arguments)
    {
        foreach (var rule in grant.ArgRules)
        {
            if (rule.Tool != tool && !Glob.IsMatch(rule.Tool, tool))
            {
                continue;
            }

            foreach (var (name, pattern) in rule.Args)
            {
                if (arguments is null || !arguments.TryGetValue(name, out var value) || value.ValueKind != JsonValueKind.String)
                {
                    return $"agent '{agent.Name}' may call '{tool}' on '{grant.Server}' only with argument '{name}' matching '{pattern}', and the call has no such string argument";
                }

                if (!Glob.IsMatch(pattern, value.GetString()!))
                {
                    return $"agent '{agent.Name}' may call '{tool}' on '{grant.Server}' only with '{name}' matching '{pattern}'";
                }
            }
        }

        return null;
    }
}
