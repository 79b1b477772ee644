using System.Diagnostics;
using Flotilla.Fleet;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Telemetry;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Traces;

/// <summary>
/// The last step of every governed call: one trace record (queued for the store), the metrics derived from it, the call's
/// span completed with the same facts, and an Information log line when the call fell back. A call whose caller is unknown
/// (no or a bad key) leaves no record.
/// </summary>
internal sealed partial class TraceStep(TraceWriter traces, GatewayMetrics metrics, TimeProvider time, ILogger<TraceStep> logger)
{
    /// <summary>Longest caller-supplied name (an unknown model) kept in a trace.</summary>
    public const int MaxCallerName = 128;

    public async ValueTask FinishAsync(ModelCall call)
    {
        TraceRecord? record = null;
        if (call.Caller is { } caller)
        {
            var result = call.Result;
            var error = call.Error;
            record = new TraceRecord
            {
                Id = call.RecordId,
                TraceId = call.TraceId,
                Kind = TraceKinds.ModelCall,
                StartedAt = call.StartedAt,
                Operation = call.Operation,
                Agent = caller.Agent.Name,
                Team = caller.Agent.Owner,
                Metadata = call.Metadata,
                // An unknown model name is the caller's text: bounded and made safe before it is stored.
                RequestedModel = call.Route?.Name ?? DisplayText.SafeOrNull(call.Request?.Model, MaxCallerName),
                FinalTarget = error is null && result?.Reply.IsSuccess == true ? result.Target?.Name : call.CacheState == "hit" ? call.CachedModel : null,
                Stream = call.Request?.Stream ?? false,
                FellBack = result?.FellBack ?? false,
                Attempts = result?.Attempts ?? [],
                Status = error?.Status ?? call.Status,
                InputTokens = call.Usage.InputTokens,
                OutputTokens = call.Usage.OutputTokens,
                CostUsd = call.CostUsd,
                TtftMs = call.TtftMs is { } t ? Math.Round(t, 3) : null,
                LatencyMs = Math.Round(time.GetElapsedTime(call.Start).TotalMilliseconds, 3),
                ErrorCode = error?.Code,
                Error = SecretScrubber.Scrub(error?.Message),
                Cache = call.CacheState,
                Policy = call.PolicyNotes,
                Guardrails = call.Verdicts,
            };
            await traces.EnqueueAsync(record);
            metrics.Record(record, call.Route?.Name);
            if (record.FellBack)
            {
                LogFellBack(logger, call.Route?.Name ?? "", record.FinalTarget ?? "", record.Attempts.Count, record.Id);
            }
        }

        if (call.Activity is { } activity)
        {
            Describe(activity, call, record);
            activity.Dispose();
        }
    }

    /// <summary>The call's span gets the GenAI attributes of its outcome; never a key, a prompt or a tag value.</summary>
    private static void Describe(Activity activity, ModelCall call, TraceRecord? record)
    {
        if (activity.Source.Name != CallTracing.SourceName)
        {
            return;
        }

        var model = call.Route?.Name;
        activity.DisplayName = model is null ? call.Operation : $"{call.Operation} {model}";
        activity.SetTag("gen_ai.request.model", model);
        if (record is not null)
        {
            activity.SetTag("gen_ai.response.model", record.FinalTarget);
            activity.SetTag("gen_ai.usage.input_tokens", record.InputTokens);
            activity.SetTag("gen_ai.usage.output_tokens", record.OutputTokens);
            activity.SetTag("flotilla.agent", record.Agent);
            activity.SetTag("flotilla.team", record.Team);
            activity.SetTag("flotilla.cost_usd", (double)record.CostUsd);
            activity.SetTag("flotilla.fell_back", record.FellBack);
            activity.SetTag("flotilla.attempts", record.Attempts.Count);
            activity.SetTag("flotilla.record_id", record.Id);
        }

        if (call.Error is { } error)
        {
            activity.SetTag("error.type", error.Code);
            activity.SetStatus(ActivityStatusCode.Error, error.Code);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Model} fell back: answered by {Target} after {Attempts} attempt(s) (trace record {RecordId})")]
    private static partial void LogFellBack(ILogger logger, string model, string target, int attempts, string recordId);
}
