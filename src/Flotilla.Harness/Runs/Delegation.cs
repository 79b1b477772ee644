using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Fleet;
using Flotilla.Mcp;

namespace Flotilla.Harness.Runs;

/// <summary>The built-in <c>delegate</c> tool a root run with <c>subagents</c> is offered.</summary>
internal static class Delegation
{
    public const string ToolName = "delegate";

    public static GovernedTool Tool(IReadOnlyList<string> subagents, IReadOnlyDictionary<string, AgentConfig> agents)
    {
        var described = string.Join("; ", subagents.Select(s => agents.TryGetValue(s, out var a) && a.Description is { Length: > 0 } d ? $"{s}: {d}" : s));
        var schema = new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["agent"] = new JsonObject { ["type"] = "string", ["enum"] = new JsonArray([.. subagents.Select(s => (JsonNode)JsonValue.Create(s)!)]) },
                ["task"] = new JsonObject { ["type"] = "string", ["description"] = "Everything the sub-agent needs: it sees only this text, not this conversation." },
            },
            ["required"] = new JsonArray("agent", "task"),
        };
        return new GovernedTool(ToolName,
            $"Hand a self-contained task to a sub-agent and get back its final answer. Several delegations in one answer run in parallel. Sub-agents: {described}.",
            JsonSerializer.SerializeToElement(schema));
    }

    /// <summary>The sub-agent and task of a delegate call, or nulls when the call names no sub-agent of this agent or no task.</summary>
    public static (string? Agent, string? Task) Parse(string arguments, IReadOnlyList<string> subagents)
    {
        try
        {
            var node = JsonNode.Parse(string.IsNullOrWhiteSpace(arguments) ? "{}" : arguments) as JsonObject;
            var agent = node?["agent"] is JsonValue a && a.TryGetValue<string>(out var name) ? name : null;
            var task = node?["task"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : null;
            return agent is not null && subagents.Contains(agent) && !string.IsNullOrWhiteSpace(task) ? (agent, task) : (null, null);
        }
        catch (JsonException)
        {
            return (null, null);
        }
    }
}
