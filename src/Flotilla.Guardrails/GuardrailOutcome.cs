namespace Flotilla.Guardrails;

/// <summary>What the guardrails of a hook decided about a call.</summary>
public enum GuardrailDecision
{
    /// <summary>Let through unchanged (audit findings may still be in the verdicts).</summary>
    Allowed,

    /// <summary>Let through with changed texts: use <see cref="GuardrailOutcome.Texts"/>.</summary>
    Redacted,

    /// <summary>Refused: see <see cref="GuardrailOutcome.Reason"/>.</summary>
    Blocked,
}

/// <summary>The result of running a hook's guardrails over a call's texts.</summary>
public sealed class GuardrailOutcome
{
    private GuardrailOutcome(GuardrailDecision decision, IReadOnlyList<string> texts, IReadOnlyList<GuardrailVerdict> verdicts, GuardrailVerdict? blockedBy, string? reason)
    {
        Decision = decision;
        Texts = texts;
        Verdicts = verdicts;
        BlockedBy = blockedBy;
        Reason = reason;
    }

    public GuardrailDecision Decision { get; }

    /// <summary>The texts to pass on: the input itself when allowed or blocked, the redacted copies when redacted (same count, same order).</summary>
    public IReadOnlyList<string> Texts { get; }

    /// <summary>One verdict per guardrail of the hook, in declared order.</summary>
    public IReadOnlyList<GuardrailVerdict> Verdicts { get; }

    /// <summary>The first guardrail (in declared order) that blocked the call; null unless blocked.</summary>
    public GuardrailVerdict? BlockedBy { get; }

    /// <summary>Why the call was blocked, fit to show the caller; never contains the matched text. Null unless blocked.</summary>
    public string? Reason { get; }

    public bool IsBlocked => Decision == GuardrailDecision.Blocked;

    internal static GuardrailOutcome Allowed(IReadOnlyList<string> texts, IReadOnlyList<GuardrailVerdict> verdicts) =>
        new(GuardrailDecision.Allowed, texts, verdicts, null, null);

    internal static GuardrailOutcome Redacted(IReadOnlyList<string> texts, IReadOnlyList<GuardrailVerdict> verdicts) =>
        new(GuardrailDecision.Redacted, texts, verdicts, null, null);

    internal static GuardrailOutcome Blocked(IReadOnlyList<string> texts, IReadOnlyList<GuardrailVerdict> verdicts, GuardrailVerdict blockedBy, string reason) =>
        new(GuardrailDecision.Blocked, texts, verdicts, blockedBy, reason);
}
