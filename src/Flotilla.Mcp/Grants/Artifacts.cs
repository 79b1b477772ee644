using System.Text.Json;
using Flotilla.Fleet;

namespace Flotilla.Mcp.Grants;

/// <summary>An artifact a call writes, and the agent that owns it (null when no loop claims it).</summary>
internal sealed record WrittenArtifact(string Name, string? Owner);

/// <summary>Recognises writes to owned artifacts (<c>gateway.artifacts</c>) and names their owners (<c>agent.owns</c>).</summary>
internal static class Artifacts
{
    public static WrittenArtifact? Written(FleetConfig fleet, string server, string tool, IReadOnlyDictionary<string, JsonElement>? arguments)
    {
        foreach (var artifact in fleet.Gateway.Artifacts)
        {
            if (artifact.Writes.Any(w => Matches(w, server, tool, arguments)))
            {
                return new WrittenArtifact(artifact.Name, fleet.Agents.FirstOrDefault(a => a.Owns.Contains(artifact.Name))?.Name);
            }
        }

        return null;
    }

    public static bool Matches(ArtifactWrite write, string server, string tool, IReadOnlyDictionary<string, JsonElement>? arguments)
    {
        if (write.Server != server || !Glob.IsMatchAny(write.Tools, tool))
        {
            return false;
        }

        foreach (var (name, pattern) in write.Args)
        {
            if (arguments is null || !arguments.TryGetValue(name, out var value) || value.ValueKind != JsonValueKind.String || !Glob.IsMatch(pattern, value.GetString()!))
            {
                return false;
            }
        }

        return true;
    }
}
