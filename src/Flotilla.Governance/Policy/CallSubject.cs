namespace Flotilla.Governance.Policy;

/// <summary>
/// Who and what a call is about, as the fleet-level policies see it. <c>applies_per</c> in a budget or rate-limit rule
/// picks one of these dimensions: <c>agent</c>, <c>team</c> (the agent's owner), <c>model</c> (the model the caller
/// asked for, virtual or not; <c>virtual_model</c> is a synonym) or <c>metadata.KEY</c> (a tag from X-Flotilla-Metadata;
/// a call without that tag is not subject to the rule).
/// </summary>
public readonly record struct CallSubject(string Agent, string Team, string Model, IReadOnlyDictionary<string, string>? Metadata)
{
    /// <summary>The MCP server of a tool call (<c>applies_per: server</c>); null for a model call.</summary>
    public string? Server { get; init; }

    public string? KeyFor(string appliesPer) => appliesPer switch
    {
        "agent" => Agent,
        "team" => Team,
        "server" => Server,
        "model" or "virtual_model" => Model,
        _ when appliesPer.StartsWith("metadata.", StringComparison.Ordinal) =>
            Metadata is not null && Metadata.TryGetValue(appliesPer["metadata.".Length..], out var value) ? value : null,
        _ => null,
    };
}
