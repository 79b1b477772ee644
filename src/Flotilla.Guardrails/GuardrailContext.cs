namespace Flotilla.Guardrails;

/// <summary>Who the checked text belongs to; passed to webhooks and kept out of every local detector.</summary>
/// <param name="Agent">The calling agent (loop).</param>
/// <param name="Team">The agent's owner, when known.</param>
public readonly record struct GuardrailContext(string Agent, string? Team);
