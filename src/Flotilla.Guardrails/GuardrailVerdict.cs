using Flotilla.Fleet;

namespace Flotilla.Guardrails;

/// <summary>
/// What a guardrail's finding did to the call. On the trace's <c>outcome</c>: None is <c>passed</c>, Audited is
/// <c>flagged</c>, the others by their names (<c>blocked</c>, <c>redacted</c>, <c>failed_open</c>, <c>skipped</c>).
/// </summary>
public enum GuardrailEffect
{
    /// <summary>Nothing found (or, for prompt-injection, a score below the threshold): the call went on.</summary>
    None,

    /// <summary>The call was refused.</summary>
    Blocked,

    /// <summary>The text was changed (secrets, PII or injected instructions replaced).</summary>
    Redacted,

    /// <summary>An <c>audit</c> guardrail found something (or its webhook failed); it was recorded and the call went on unchanged.</summary>
    Audited,

    /// <summary>A webhook failed (timeout, error, bad answer) and is configured to let the call through.</summary>
    FailedOpen,

    /// <summary>Not run, because an earlier guardrail blocked the call.</summary>
    Skipped,
}

/// <summary>How many of one kind of thing a guardrail found (e.g. 2 × <c>github-token</c>, 1 × <c>instruction-override</c>).</summary>
public readonly record struct GuardrailFinding(string Kind, int Count);

/// <summary>
/// One guardrail's result on one call, for the trace. It never holds the text it matched: <see cref="Note"/> names
/// kinds and counts only.
/// </summary>
/// <param name="Name">The guardrail's name (its type unless the fleet file names it).</param>
/// <param name="Type">prompt-injection, secrets-detection, pii, regex or webhook.</param>
/// <param name="Action">The configured action: block, redact or audit.</param>
/// <param name="Triggered">Whether the guardrail found something (a score at or above its threshold, a match, a webhook that did not allow).</param>
/// <param name="Effect">What that did to the call.</param>
/// <param name="Score">prompt-injection: the score, 0..1; null for the others.</param>
/// <param name="Findings">Kinds and counts of what was found; empty when nothing was.</param>
/// <param name="DurationMicroseconds">Time the guardrail took, in microseconds.</param>
/// <param name="Note">A short explanation (signals that fired, a webhook's reason, why a webhook failed); never the matched text.</param>
public readonly record struct GuardrailVerdict(
    string Name,
    string Type,
    GuardrailAction Action,
    bool Triggered,
    GuardrailEffect Effect,
    double? Score,
    IReadOnlyList<GuardrailFinding> Findings,
    long DurationMicroseconds,
    string? Note);
