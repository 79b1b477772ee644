using System.Diagnostics;
using Flotilla.Governance.Budgets;
using Flotilla.Governance.Errors;
using Flotilla.Governance.Fleet;
using Flotilla.Governance.Identity;
using Flotilla.Governance.Policy;
using Flotilla.Governance.RateLimiting;
using Flotilla.Guardrails;
using Flotilla.Storage.Traces;

namespace Flotilla.Governance.Calls;

/// <summary>
/// What every governed call carries through its pipeline, whatever it is (a model call, a tool call, a run step): who is
/// calling, on which fleet version, and what each policy decided, so that the policy that acquired something (a rate-limit
/// slot, a budget reservation) finds it again when it settles. Lives for one call; never shared between threads.
/// </summary>
public abstract class GovernedCall(FleetSnapshot snapshot, string traceId, string recordId, Activity? activity, DateTimeOffset startedAt, long start)
{
    /// <summary>The fleet version the call started on; it finishes on it whatever is applied meanwhile.</summary>
    public FleetSnapshot Snapshot { get; } = snapshot;

    /// <summary>The W3C trace id (<c>X-Flotilla-Trace-Id</c>).</summary>
    public string TraceId { get; } = traceId;

    /// <summary>This call's trace record id.</summary>
    public string RecordId { get; } = recordId;

    public Activity? Activity { get; } = activity;

    public DateTimeOffset StartedAt { get; } = startedAt;

    /// <summary>When the call arrived, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long Start { get; } = start;

    public CallerIdentity? Caller { get; set; }

    public IReadOnlyDictionary<string, string>? Metadata { get; set; }

    /// <summary>Who and what the call is about, as rate limits and budgets see it.</summary>
    public abstract CallSubject Subject { get; }

    /// <summary>Tokens the call used, once it is over (rate limits replace their estimate with it).</summary>
    public abstract long ActualTokens { get; }

    public GuardrailContext GuardrailContext => new(Caller!.Agent.Name, Caller.Agent.Owner);

    /// <summary>Input tokens the call is expected to send: exact, or an upper bound while <see cref="EstimateIsUpperBound"/>.</summary>
    public long EstimatedInputTokens { get; set; }

    /// <summary>
    /// Whether the estimates are a cheap upper bound (the text's byte length) rather than the tokenizer's count. A policy that
    /// would refuse on the bound calls <see cref="RefineEstimate"/> and decides on the count instead.
    /// </summary>
    public bool EstimateIsUpperBound { get; set; }

    /// <summary>Estimated input plus the output limit when one is set: what a token rate limit counts before the call.</summary>
    public long EstimatedTokens { get; set; }

    /// <summary>Output tokens a budget reserves for.</summary>
    public long MaxOutputTokens { get; set; }

    public RateLimitDecision? RateLimit { get; set; }

    public BudgetDecision? Budget { get; set; }

    public decimal CostUsd { get; set; }

    /// <summary>The status the caller got; an error's status wins.</summary>
    public int Status { get; set; } = 200;

    public GatewayException? Error { get; set; }

    public List<string>? PolicyNotes { get; private set; }

    public List<TraceVerdict>? Verdicts { get; private set; }

    /// <summary>Replaces an upper-bound estimate with the tokenizer's count; false when the estimate was exact already.</summary>
    public virtual bool RefineEstimate() => false;

    public void Note(string note) => (PolicyNotes ??= []).Add(note);

    public void AddVerdicts(string hook, IReadOnlyList<GuardrailVerdict> found)
    {
        foreach (var v in found)
        {
            (Verdicts ??= []).Add(new TraceVerdict(hook, v.Name, v.Action.ToString().ToLowerInvariant(), v.Effect switch
            {
                GuardrailEffect.Blocked => "blocked",
                GuardrailEffect.Redacted => "redacted",
                GuardrailEffect.Audited => "flagged",
                GuardrailEffect.FailedOpen => "failed_open",
                GuardrailEffect.Skipped => "skipped",
                _ => "passed",
            }, v.Findings is { Count: > 0 } findings ? string.Join(", ", findings.Select(f => $"{f.Kind}×{f.Count}")) : v.Note,
            v.Score is { } score ? Math.Round(score, 3) : null));
        }
    }
}
