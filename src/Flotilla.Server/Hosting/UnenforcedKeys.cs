using Flotilla.Fleet;

namespace Flotilla.Server.Hosting;

/// <summary>
/// Fleet keys this build reads and validates but does not act on yet. <c>serve</c> warns once per key present in the
/// loaded fleet, so nobody mistakes a declared control for an enforced one. docs/guardrails.md and docs/fleet-file.md
/// list the same keys; the list shrinks as the harness lands.
/// </summary>
internal static class UnenforcedKeys
{

    public static IEnumerable<string> In(FleetConfig fleet)
    {
        var gateway = fleet.Gateway;
        var recognised = gateway.Artifacts.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var unrecognised = fleet.Agents.SelectMany(a => a.Owns).Where(o => !recognised.Contains(o)).Distinct().ToList();
        if (unrecognised.Count > 0)
        {
            yield return $"agent.owns names {string.Join(", ", unrecognised.Select(o => $"'{o}'"))} with no gateway.artifacts entry saying how a write is recognised, " +
                "so writes to it by other loops are not refused; add one (docs/mcp.md#artifact-ownership)";
        }

        if (fleet.McpServers.Any(s => s.Auth.Type == McpAuthType.PerUser) && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable("FLOTILLA_VAULT_KEY")))
        {
            yield return "mcp_server auth per_user needs the token vault's key: set FLOTILLA_VAULT_KEY (openssl rand -base64 32); until then per-user servers are not connected";
        }

        var agents = fleet.Agents;



    }
}
