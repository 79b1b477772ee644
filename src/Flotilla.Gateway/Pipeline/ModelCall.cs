using Flotilla.Gateway.Policy;
using System.Diagnostics;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;
using Flotilla.Governance.Calls;
using Flotilla.Governance.Policy;

namespace Flotilla.Gateway.Pipeline;

/// <summary>
/// One governed model call as it moves through <see cref="ModelCallPipeline"/>: what every governed call carries, plus what
/// was asked, where it was routed, the cache's verdict and the upstream's answer.
/// </summary>
internal sealed class ModelCall(
    GatewayRuntime runtime, CallKind kind, IngressFormat ingress, string traceId, string recordId, Activity? activity, DateTimeOffset startedAt, long start)
    : GovernedCall(runtime.Snapshot, traceId, recordId, activity, startedAt, start)
{
    /// <summary>The gateway built for the fleet version the call started on.</summary>
    public GatewayRuntime Runtime { get; } = runtime;

    public CallKind Kind { get; } = kind;

    /// <summary>The wire format the caller spoke.</summary>
    public IngressFormat Ingress { get; } = ingress;

    /// <summary>What traces and metrics call the call: <c>chat</c>, <c>messages</c>, <c>responses</c> or <c>embeddings</c>.</summary>
    public string Operation => OperationName(Kind, Ingress);

    public static string OperationName(CallKind kind, IngressFormat ingress) => kind == CallKind.Embeddings ? "embeddings" : ingress switch
    {
        IngressFormat.Messages => "messages",
        IngressFormat.Responses => "responses",
        _ => "chat",
    };

    public ChatRequest? Request { get; set; }

    public Route? Route { get; set; }

    /// <summary>How the caller wants the cache used (<c>X-Flotilla-Cache-Control</c>).</summary>
    public CacheControl CacheControl { get; set; }

    public override CallSubject Subject => new(Caller!.Agent.Name, Caller.Agent.Owner, Route!.Name, Metadata);

    /// <summary>A cache hit used no tokens.</summary>
    public override long ActualTokens => CacheState == "hit" ? 0 : Usage.Total;

    private long? _exactInputTokens;

    /// <summary>The tokenizer's count of the request's input, counted once on first use.</summary>
    public long ExactInputTokens() => _exactInputTokens ??= TokenEstimator.EstimateInput(Request!);

    public override bool RefineEstimate()
    {
        if (!EstimateIsUpperBound)
        {
            return false;
        }

        EstimateInput(ExactInputTokens(), upperBound: false);
        return true;
    }

    /// <summary>Sets the input estimate and what a token rate limit counts with it (the input plus <c>max_tokens</c> when set).</summary>
    public void EstimateInput(long inputTokens, bool upperBound)
    {
        EstimatedInputTokens = inputTokens;
        EstimateIsUpperBound = upperBound;
        EstimatedTokens = inputTokens + (Request!.MaxTokens ?? 0);
    }

    public CacheKey? CacheKey { get; set; }

    /// <summary><c>hit</c>, <c>miss</c>, or null when caching did not apply.</summary>
    public string? CacheState { get; set; }

    /// <summary>The model a cached answer came from.</summary>
    public string? CachedModel { get; set; }

    public DispatchResult? Result { get; set; }

    public TokenUsage Usage { get; set; }

    public double? TtftMs { get; set; }
}

/// <summary><c>X-Flotilla-Cache-Control</c>: <c>no-store</c> opts out; <c>no-cache</c> skips the lookup but stores the fresh answer.</summary>
internal enum CacheControl { Default, NoCache, NoStore }
