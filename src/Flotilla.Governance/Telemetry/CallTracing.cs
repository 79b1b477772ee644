using System.Diagnostics;
using System.Buffers.Binary;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Governance.Telemetry;

/// <summary>
/// Spans for governed calls on the activity source <see cref="SourceName"/>: one per call (a server span named
/// <c>{operation} {model}</c> with GenAI attributes) and one per upstream attempt (a client span), exported over OTLP when
/// the fleet or <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> says where. A caller's W3C <c>traceparent</c> is the parent, and the call's
/// trace id is <c>X-Flotilla-Trace-Id</c>, so Flotilla's trace store and the caller's tracing backend share one id.
/// </summary>
public static class CallTracing
{
    public const string SourceName = "Flotilla.Gateway";

    public static readonly ActivitySource Source = new(SourceName);

    static CallTracing()
    {
        // Root spans started while an exporter listens get time-ordered ids too.
        Activity.TraceIdGenerator ??= NewTraceId;
    }

    /// <summary>
    /// A new trace id: the Unix time in milliseconds in its first 6 bytes, 10 random bytes after (as UUIDv7 orders its
    /// ids). Trace records are keyed and indexed by it, so time order keeps every insert at the end of the index instead of
    /// in a random page (3x cheaper per trace in SQLite; docs/performance.md). The id says when the call started, nothing else.
    /// </summary>
    public static ActivityTraceId NewTraceId()
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 16);
        Random.Shared.NextBytes(bytes[6..]);
        return ActivityTraceId.CreateFromBytes(bytes);
    }

    /// <summary>
    /// Starts the call's span, parented on the caller's <c>traceparent</c> when it sent a valid one, and returns it with the
    /// call's trace id. With no exporter listening, a caller's trace context is still made current (so it reaches upstreams)
    /// and its trace id kept; without one either, the trace id is random.
    /// </summary>
    public static (Activity? Activity, string TraceId) StartCall(IHeaderDictionary? headers, string operation)
    {
        var hasParent = headers is not null && headers.TryGetValue("traceparent", out var traceparent)
            && ActivityContext.TryParse(traceparent.ToString(), headers.TryGetValue("tracestate", out var state) ? state.ToString() : null, isRemote: true, out var parent);
        if (Source.HasListeners())
        {
            var activity = hasParent
                ? Source.StartActivity(operation, ActivityKind.Server, parent)
                : Source.StartActivity(operation, ActivityKind.Server, parentContext: default);
            if (activity is not null)
            {
                activity.SetTag("gen_ai.operation.name", operation);
                return (activity, activity.TraceId.ToHexString());
            }
        }

        if (hasParent)
        {
            var carrier = new Activity(operation);
            carrier.SetParentId(parent.TraceId, parent.SpanId, parent.TraceFlags);
            carrier.TraceStateString = parent.TraceState;
            carrier.Start();
            return (carrier, parent.TraceId.ToHexString());
        }

        return (null, NewTraceId().ToHexString());
    }

    /// <summary>A client span around one upstream attempt, when anything listens.</summary>
    public static Activity? StartAttempt(string operation, string target, string upstreamModel, string provider)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var activity = Source.StartActivity($"{operation} {upstreamModel}", ActivityKind.Client);
        activity?.SetTag("gen_ai.operation.name", operation);
        activity?.SetTag("gen_ai.request.model", upstreamModel);
        activity?.SetTag("flotilla.target", target);
        activity?.SetTag("flotilla.provider", provider);
        return activity;
    }
}
