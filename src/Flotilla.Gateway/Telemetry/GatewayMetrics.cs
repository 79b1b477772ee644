using System.Diagnostics;
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
    private readonly Counter<double> _cost;
    private readonly Counter<long> _calls;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _cacheLookups;
    private readonly Counter<long> _guardrailVerdicts;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _cooldowns;

    public GatewayMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _tokens = meter.CreateHistogram<long>("gen_ai.client.token.usage", "{token}", "Tokens used per call, by token type (input, output).",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [.. TokenBuckets.Select(b => (long)b)] });
        _duration = meter.CreateHistogram<double>("gen_ai.client.operation.duration", "s", "Duration of a governed model call, from arrival to the last byte.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _ttft = meter.CreateHistogram<double>("gen_ai.server.time_to_first_token", "s", "Time from a call's arrival to the first byte sent to the caller.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _cost = meter.CreateCounter<double>("flotilla.cost.usd", "{USD}", "Cost of answered calls in US dollars, from the answering model's price.");
        _calls = meter.CreateCounter<long>("flotilla.calls", "{call}", "Governed calls by outcome: ok, error code (rate_limit_exceeded, budget_exceeded, …).");
        _fallbacks = meter.CreateCounter<long>("flotilla.fallbacks", "{call}", "Calls answered by a target other than the first of the plan.");
        _retries = meter.CreateCounter<long>("flotilla.retries", "{attempt}", "Attempts beyond the first on the same target.");
        _cacheLookups = meter.CreateCounter<long>("flotilla.cache.lookups", "{lookup}", "Response cache lookups by result (hit, miss).");
        _guardrailVerdicts = meter.CreateCounter<long>("flotilla.guardrail.verdicts", "{verdict}", "Guardrail verdicts by guardrail, hook, action and outcome.");
        _rateLimited = meter.CreateCounter<long>("flotilla.rate_limit.refusals", "{call}", "Calls refused by a rate limit.");
        _cooldowns = meter.CreateCounter<long>("flotilla.target.cooldowns", "{cooldown}", "Times a target started cooling down after repeated failures.");
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
        var outcome = trace.ErrorCode ?? (trace.Status < 400 ? "ok" : "error");
        if (_calls.Enabled)
        {
            _calls.Add(1, Tags(operation, model, agent, team, ("flotilla.outcome", outcome), ("flotilla.target", trace.FinalTarget ?? "none")));
        }

        if (outcome == "rate_limit_exceeded" && _rateLimited.Enabled)
        {
            _rateLimited.Add(1, Tags(operation, model, agent, team));
        }

        if (_duration.Enabled)
        {
            var tags = Tags(operation, model, agent, team, ("gen_ai.response.model", trace.FinalTarget ?? "none"));
            if (trace.ErrorCode is { } code)
            {
                tags.Add("error.type", code);
            }

            _duration.Record(trace.LatencyMs / 1000, tags);
        }

        if (trace.TtftMs is { } ttft && _ttft.Enabled)
        {
            _ttft.Record(ttft / 1000, Tags(operation, model, agent, team, ("gen_ai.response.model", trace.FinalTarget ?? "none")));
        }

        if (trace.FinalTarget is { } target && trace.Cache != "hit")
        {
            if (_tokens.Enabled)
            {
                _tokens.Record(trace.InputTokens, Tags(operation, model, agent, team, ("gen_ai.response.model", target), ("gen_ai.token.type", "input")));
                _tokens.Record(trace.OutputTokens, Tags(operation, model, agent, team, ("gen_ai.response.model", target), ("gen_ai.token.type", "output")));
            }

            if (trace.CostUsd > 0 && _cost.Enabled)
            {
                _cost.Add((double)trace.CostUsd, Tags(operation, model, agent, team, ("gen_ai.response.model", target)));
            }
        }

        if (trace.FellBack && _fallbacks.Enabled)
        {
            _fallbacks.Add(1, Tags(operation, model, agent, team, ("gen_ai.response.model", trace.FinalTarget ?? "none")));
        }

        if (_retries.Enabled && trace.Attempts.Count > 1)
        {
            // Attempts after the first on the same target are retries; a change of target is a fallback.
            for (var i = 1; i < trace.Attempts.Count; i++)
            {
                if (trace.Attempts[i].Target == trace.Attempts[i - 1].Target)
                {
                    _retries.Add(1, Tags(operation, model, agent, team, ("flotilla.target", trace.Attempts[i].Target)));
                }
            }
        }

        if (trace.Cache is { } cache && _cacheLookups.Enabled)
        {
            _cacheLookups.Add(1, Tags(operation, model, agent, team, ("flotilla.cache.result", cache)));
        }

        if (trace.Guardrails is { Count: > 0 } verdicts && _guardrailVerdicts.Enabled)
        {
            foreach (var v in verdicts)
            {
                _guardrailVerdicts.Add(1, new TagList
                {
                    { "flotilla.agent", agent }, { "flotilla.team", team }, { "flotilla.guardrail", v.Guardrail }, { "flotilla.hook", v.Hook },
                    { "flotilla.guardrail.action", v.Action }, { "flotilla.guardrail.outcome", v.Outcome },
                });
            }
        }
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

    private static TagList Tags(string operation, string model, string agent, string team, params ReadOnlySpan<(string Key, string Value)> more)
    {
        var tags = new TagList
        {
            { "gen_ai.operation.name", operation }, { "gen_ai.request.model", model }, { "flotilla.agent", agent }, { "flotilla.team", team },
        };
        foreach (var (key, value) in more)
        {
            tags.Add(key, value);
        }

        return tags;
    }
}
