using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Diagnostics.Metrics;
using Flotilla.Storage.Traces;

namespace Flotilla.Gateway.Telemetry;

/// <summary>
/// The gateway's instruments, on the meter <see cref="MeterName"/>. The OpenTelemetry GenAI semantic conventions where they
/// exist (<c>gen_ai.client.token.usage</c>, <c>gen_ai.client.operation.duration</c>, <c>gen_ai.server.time_to_first_token</c>),
/// Flotilla's own under <c>flotilla.*</c>. Everything about a call is recorded once, from its finished trace record, so the
/// figures and the trace store cannot disagree. Labels are bounded: agent, team, model, target, outcome, guardrail, hook —
/// never metadata values, trace ids or text a caller chose (an unknown model is recorded as <c>unknown</c>).
/// </summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "Flotilla";

    /// <summary>Bucket boundaries the GenAI conventions recommend for token counts.</summary>
    public static readonly double[] TokenBuckets = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];

    /// <summary>Bucket boundaries the GenAI conventions recommend for durations, in seconds.</summary>
    public static readonly double[] DurationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

    private readonly Histogram<long> _tokens;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _ttft;
    private readonly Counter<long> _cooldowns;

    // Counters are summed here, per label set, and read by the SDK only when metrics are collected: a call pays for one
    // dictionary lookup and a few interlocked adds, not for a trip through the SDK per counter (which the benchmark
    // showed costing a fifth of the gateway's throughput).
    private readonly ConcurrentDictionary<CallKey, CallTotals> _calls = new();
    private readonly ConcurrentDictionary<RetryKey, StrongBox<long>> _retries = new();
    private readonly ConcurrentDictionary<VerdictKey, StrongBox<long>> _verdicts = new();

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _tokens = meter.CreateHistogram<long>("gen_ai.client.token.usage", "{token}", "Tokens used per call, by token type (input, output).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [.. TokenBuckets.Select(b => (long)b)] });
        _duration = meter.CreateHistogram<double>("gen_ai.client.operation.duration", "s", "Duration of a governed model call, from arrival to the last byte.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _ttft = meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s", "Time from a call's arrival to the first byte sent to the caller.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _cooldowns = meter.CreateCounter<long>("flotilla.target.cooldowns", "{cooldown}", "Times a target started cooling down after repeated failures.");
        meter.CreateObservableCounter("flotilla.calls", () => Observe(t => t.Calls), "{call}",
            "Governed calls by outcome: ok, or the error code (rate_limit_exceeded, budget_exceeded, guardrail_blocked, …).");
        meter.CreateObservableCounter("flotilla.cost.usd", () => Observe(t => t.CostNanos / 1e9, t => t.CostNanos > 0), "{USD}",
            "Cost of answered calls in US dollars, from the answering model's price.");
        meter.CreateObservableCounter("flotilla.tokens", () => ObserveTokens(), "{token}", "Tokens used, by token type (input, output).");
        meter.CreateObservableCounter("flotilla.fallbacks", () => Observe(t => t.Fallbacks, t => t.Fallbacks > 0), "{call}",
            "Calls answered by a target other than the first of the plan.");
        meter.CreateObservableCounter("flotilla.rate_limit.refusals", () => Observe(t => t.Calls, outcome: "rate_limit_exceeded"), "{call}",
            "Calls refused by a rate limit.");
        meter.CreateObservableCounter("flotilla.cache.lookups", () => ObserveCache(), "{lookup}", "Response cache lookups by result (hit, miss).");
        meter.CreateObservableCounter("flotilla.retries", () => _retries.Select(r => new Measurement<long>(r.Value.Value, new TagList
        {
            { "gen_ai.operation.name", r.Key.Operation }, { "gen_ai.request.model", r.Key.Model }, { "flotilla.agent", r.Key.Agent },
            { "flotilla.team", r.Key.Team }, { "flotilla.target", r.Key.Target },
        })), "{attempt}", "Attempts beyond the first on the same target.");
        meter.CreateObservableCounter("flotilla.guardrail.verdicts", () => _verdicts.Select(v => new Measurement<long>(v.Value.Value, new TagList
        {
            { "flotilla.agent", v.Key.Agent }, { "flotilla.team", v.Key.Team }, { "flotilla.guardrail", v.Key.Guardrail }, { "flotilla.hook", v.Key.Hook },
            { "flotilla.guardrail.action", v.Key.Action }, { "flotilla.guardrail.outcome", v.Key.Outcome },
        })), "{verdict}", "Guardrail verdicts by guardrail, hook, action and outcome.");
        Meter = meter;
    }

    public Meter Meter { get; }

    /// <summary>Records a finished call. <paramref name="requestedModel"/> is null when the caller named a model the fleet does not have.</summary>
    public void Record(TraceRecord trace, string? requestedModel)
    {
        var operation = trace.Operation;
        var model = requestedModel ?? "unknown";
        var agent = trace.Agent ?? "unknown";
        var team = trace.Team ?? "unknown";
        var responseModel = trace.FinalTarget ?? "none";
        var outcome = trace.ErrorCode ?? (trace.Status < 400 ? "ok" : "error");
        var totals = _calls.GetOrAdd(new CallKey(operation, model, agent, team, outcome, responseModel), static _ => new CallTotals());
        Interlocked.Increment(ref totals.Calls);
        var hit = trace.Cache == "hit";
        if (trace.FinalTarget is not null && !hit)
        {
            Interlocked.Add(ref totals.InputTokens, trace.InputTokens);
            Interlocked.Add(ref totals.OutputTokens, trace.OutputTokens);
            Interlocked.Add(ref totals.CostNanos, (long)decimal.Round(trace.CostUsd * 1_000_000_000m));
        }

        if (trace.FellBack)
        {
            Interlocked.Increment(ref totals.Fallbacks);
        }

        if (trace.Cache is not null)
        {
            Interlocked.Increment(ref hit ? ref totals.CacheHits : ref totals.CacheMisses);
        }

        for (var i = 1; i < trace.Attempts.Count; i++)
        {
            // Attempts after the first on the same target are retries; a change of target is a fallback.
            if (trace.Attempts[i].Target == trace.Attempts[i - 1].Target)
            {
                Interlocked.Increment(ref _retries.GetOrAdd(new RetryKey(operation, model, agent, team, trace.Attempts[i].Target), static _ => new StrongBox<long>()).Value);
            }
        }

        foreach (var v in trace.Guardrails ?? [])
        {
            Interlocked.Increment(ref _verdicts.GetOrAdd(new VerdictKey(agent, team, v.Guardrail, v.Hook, v.Action, v.Outcome), static _ => new StrongBox<long>()).Value);
        }

        if (_duration.Enabled)
        {
            var tags = new TagList
            {
                { "gen_ai.operation.name", operation }, { "gen_ai.request.model", model }, { "gen_ai.response.model", responseModel }, { "flotilla.agent", agent },
            };
            if (trace.ErrorCode is { } code)
            {
                tags.Add("error.type", code);
            }

            _duration.Record(trace.LatencyMs / 1000, tags);
        }

        if (trace.TtftMs is { } ttft && _ttft.Enabled)
        {
            _ttft.Record(ttft / 1000, new TagList
            {
                { "gen_ai.operation.name", operation }, { "gen_ai.request.model", model }, { "gen_ai.response.model", responseModel }, { "flotilla.agent", agent },
            });
        }

        if (trace.FinalTarget is not null && !hit && _tokens.Enabled)
        {
            _tokens.Record(trace.InputTokens, TokenTags(operation, model, responseModel, agent, "input"));
            _tokens.Record(trace.OutputTokens, TokenTags(operation, model, responseModel, agent, "output"));
        }
    }

    private static TagList TokenTags(string operation, string model, string responseModel, string agent, string type) => new()
    {
        { "gen_ai.operation.name", operation }, { "gen_ai.request.model", model }, { "gen_ai.response.model", responseModel },
        { "flotilla.agent", agent }, { "gen_ai.token.type", type },
    };

    private IEnumerable<Measurement<T>> Observe<T>(Func<CallTotals, T> value, Func<CallTotals, bool>? include = null, string? outcome = null)
        where T : struct
    {
        foreach (var (key, totals) in _calls)
        {
            if ((outcome is null || key.Outcome == outcome) && (outcome is not null || include is null || include(totals)))
            {
                yield return new Measurement<T>(value(totals), Tags(key));
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveTokens()
    {
        foreach (var (key, totals) in _calls)
        {
            if (totals.InputTokens + totals.OutputTokens > 0)
            {
                var input = Tags(key);
                input.Add("gen_ai.token.type", "input");
                yield return new Measurement<long>(Interlocked.Read(ref totals.InputTokens), input);
                var output = Tags(key);
                output.Add("gen_ai.token.type", "output");
                yield return new Measurement<long>(Interlocked.Read(ref totals.OutputTokens), output);
            }
        }
    }

    private IEnumerable<Measurement<long>> ObserveCache()
    {
        foreach (var (key, totals) in _calls)
        {
            foreach (var (result, count) in new[] { ("hit", totals.CacheHits), ("miss", totals.CacheMisses) })
            {
                if (count > 0)
                {
                    var tags = Tags(key);
                    tags.Add("flotilla.cache.result", result);
                    yield return new Measurement<long>(count, tags);
                }
            }
        }
    }

    private static TagList Tags(CallKey key) => new()
    {
        { "gen_ai.operation.name", key.Operation }, { "gen_ai.request.model", key.Model }, { "flotilla.agent", key.Agent }, { "flotilla.team", key.Team },
        { "flotilla.outcome", key.Outcome }, { "gen_ai.response.model", key.ResponseModel },
    };

    private readonly record struct CallKey(string Operation, string Model, string Agent, string Team, string Outcome, string ResponseModel);

    private readonly record struct RetryKey(string Operation, string Model, string Agent, string Team, string Target);

    private readonly record struct VerdictKey(string Agent, string Team, string Guardrail, string Hook, string Action, string Outcome);

    private sealed class CallTotals
    {
        public long Calls;
        public long InputTokens;
        public long OutputTokens;
        public long CostNanos;
        public long Fallbacks;
        public long CacheHits;
        public long CacheMisses;
    }

    /// <summary>
    /// Gauges read when metrics are collected, never on the request path: each budget's spend as a share of its limit (rules
    /// per agent, team or model only: a metadata rule's keys are caller tags), the trace writer's queue, and failed store writes.
    /// </summary>
    public void Observe(LiveFleet fleet, TraceWriter traces)
    {
        Meter.CreateObservableGauge("flotilla.budget.spend_ratio", () => fleet.Current.Budgets.Status()
            .Where(b => b.AppliesPer is "agent" or "team" or "model" or "virtual_model" && b.LimitUsd > 0)
            .Select(b => new Measurement<double>((double)(b.SpentUsd / b.LimitUsd), new TagList
            {
                { "flotilla.budget", b.Rule }, { "flotilla.budget.applies_per", b.AppliesPer }, { "flotilla.budget.key", b.Key },
            })), "1", "Spend in the current window as a share of the budget's limit (1 = used up).");
        Meter.CreateObservableGauge("flotilla.trace_writer.queue_depth", () => (long)traces.QueueDepth, "{trace}", "Traces waiting to be written.");
        Meter.CreateObservableGauge("flotilla.trace_writer.held", () => (long)(traces.Failure?.Held ?? 0), "{trace}",
            "Traces held in memory because neither the store nor the spill journal takes them.");
        Meter.CreateObservableCounter("flotilla.trace_writer.failures", () => traces.FailedWrites, "{write}", "Trace store writes that failed.");
    }

    /// <summary>A target began cooling down.</summary>
    public void CooldownStarted(string target)
    {
        if (_cooldowns.Enabled)
        {
            _cooldowns.Add(1, new KeyValuePair<string, object?>("flotilla.target", target));
        }
    }
}
