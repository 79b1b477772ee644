using System.Diagnostics;
using Flotilla.Fleet;
using Flotilla.Gateway.Budgets;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Identity;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.RateLimiting;
using Flotilla.Gateway.Routing;
using Flotilla.Guardrails;
using Flotilla.Storage.Traces;

namespace Flotilla.Gateway.Pipeline;

/// <summary>
/// One governed model call as it moves through <see cref="ModelCallPipeline"/>: who is calling, what was asked, and what
/// each policy decided, so that the policy that acquired something (a rate-limit slot, a budget reservation, a cache key)
/// finds it again when it settles. Lives for one call; never shared between threads.
/// </summary>
internal sealed class ModelCall(GatewayRuntime runtime, CallKind kind, string traceId, string recordId, Activity? activity, DateTimeOffset startedAt, long start)
{
    /// <summary>The fleet version the call started on; it finishes on it whatever is applied meanwhile.</summary>
    public GatewayRuntime Runtime { get; } = runtime;

    public CallKind Kind { get; } = kind;

    public string Operation => Kind == CallKind.Chat ? "chat" : "embeddings";

    public string TraceId { get; } = traceId;

    public string RecordId { get; } = recordId;

    public Activity? Activity { get; } = activity;

    public DateTimeOffset StartedAt { get; } = startedAt;

    /// <summary>When the call arrived, as a <see cref="TimeProvider"/> timestamp.</summary>
    public long Start { get; } = start;

    public CallerIdentity? Caller { get; set; }

    public IReadOnlyDictionary<string, string>? Metadata { get; set; }

    public ChatRequest? Request { get; set; }

    public Route? Route { get; set; }

    /// <summary>How the caller wants the cache used (<c>X-Flotilla-Cache-Control</c>).</summary>
    public CacheControl CacheControl { get; set; }

    public CallSubject Subject => new(Caller!.Agent.Name, Caller.Agent.Owner, Route!.Name, Metadata);

    public GuardrailContext GuardrailContext => new(Caller!.Agent.Name, Caller.Agent.Owner);

    public long EstimatedInputTokens { get; set; }

    /// <summary>Estimated input plus <c>max_tokens</c> when set: what a token rate limit counts before the call.</summary>
    public long EstimatedTokens { get; set; }

    /// <summary>Output tokens a budget reserves for: <c>max_tokens</c>, else the default.</summary>
    public long MaxOutputTokens { get; set; }

    public RateLimitDecision? RateLimit { get; set; }

    public BudgetDecision? Budget { get; set; }

    public CacheKey? CacheKey { get; set; }

    /// <summary><c>hit</c>, <c>miss</c>, or null when caching did not apply.</summary>
    public string? CacheState { get; set; }

    /// <summary>The model a cached answer came from.</summary>
    public string? CachedModel { get; set; }

    public DispatchResult? Result { get; set; }

    public TokenUsage Usage { get; set; }

    public decimal CostUsd { get; set; }

    public double? TtftMs { get; set; }

    /// <summary>The status the caller got; an error's status wins.</summary>
    public int Status { get; set; } = 200;

    public GatewayException? Error { get; set; }

    public List<string>? PolicyNotes { get; private set; }

    public List<TraceVerdict>? Verdicts { get; private set; }

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

    /// <summary>The call reached a target that answered (or a cached answer).</summary>
    public bool Answered => Error is null && (Result?.Reply.IsSuccess == true || CacheState == "hit");
}

/// <summary><c>X-Flotilla-Cache-Control</c>: <c>no-store</c> opts out; <c>no-cache</c> skips the lookup but stores the fresh answer.</summary>
internal enum CacheControl { Default, NoCache, NoStore }
