using System.Diagnostics;
using Flotilla.Storage.Traces;

namespace Flotilla.Mcp.Calls;

/// <summary>One <c>tools/call</c> through the gateway, as the governed path carries it.</summary>
internal sealed class ToolCall(FleetSnapshot snapshot, string traceId, string recordId, Activity? activity, DateTimeOffset startedAt, long start, string exposed)
    : GovernedCall(snapshot, traceId, recordId, activity, startedAt, start)
{
    /// <summary>The name the caller used (<c>SERVER__TOOL</c>).</summary>
    public string Exposed { get; } = exposed;

    public string? Server { get; set; }

    public string? Tool { get; set; }

    public string? User { get; set; }

    /// <summary>The harness run the call belongs to (<c>_meta["flotilla/run_id"]</c>).</summary>
    public string? Run { get; set; }

    /// <summary>The model's tool-call id (<c>_meta["flotilla/tool_call_id"]</c>).</summary>
    public string? ToolCallId { get; set; }

    public string ArgumentsSha256 { get; set; } = "";

    public string? Arguments { get; set; }

    public string? Artifact { get; set; }

    public string? ApprovalId { get; set; }

    public string? Idempotency { get; set; }

    public string? ErrorCode { get; set; }

    public string? ErrorMessage { get; set; }

    public override CallSubject Subject => new(Caller!.Agent.Name, Caller.Agent.Owner, Exposed, Metadata) { Server = Server };

    public override long ActualTokens => 0;

    public void Fail(int status, string code, string message)
    {
        Status = status;
        ErrorCode = code;
        ErrorMessage = message;
    }

    public TraceRecord ToRecord(double latencyMs) => new()
    {
        Id = RecordId,
        TraceId = TraceId,
        Kind = TraceKinds.ToolCall,
        StartedAt = StartedAt,
        Operation = "tools/call",
        Agent = Caller?.Agent.Name,
        Team = Caller?.Agent.Owner,
        Metadata = Metadata,
        RequestedModel = DisplayTextOf(Exposed),
        FinalTarget = Server,
        Status = Status,
        LatencyMs = Math.Round(latencyMs, 3),
        ErrorCode = ErrorCode,
        Error = SecretScrubber.Scrub(ErrorMessage),
        Policy = PolicyNotes,
        Guardrails = Verdicts,
        Tool = Server is null || Tool is null ? null : new TraceToolCall(Server, Tool, User, ArgumentsSha256, Arguments, ApprovalId, Idempotency, Artifact),
    };

    private static string DisplayTextOf(string name) => Flotilla.Fleet.DisplayText.Safe(name, 160);
}
