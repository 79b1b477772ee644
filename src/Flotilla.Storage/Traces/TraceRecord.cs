namespace Flotilla.Storage.Traces;

/// <summary>
/// One gateway call, written once when the call ends. Holds no key, no Authorization header and no prompt
/// text: who called, what was routed where, what it cost and how long it took.
/// </summary>
public sealed record TraceRecord
{
    /// <summary>This record's id: the W3C trace id, or, when the caller supplied the trace context, the trace id and a span id.</summary>
    public required string Id { get; init; }
    /// <summary>The W3C trace id (<c>X-Flotilla-Trace-Id</c>), shared with the caller's tracing backend.</summary>
    public string? TraceId { get; init; }
    /// <summary>What was governed: <see cref="TraceKinds.ModelCall"/>, <see cref="TraceKinds.ToolCall"/> or <see cref="TraceKinds.RunStep"/>.</summary>
    public string Kind { get; init; } = TraceKinds.ModelCall;
    public required DateTimeOffset StartedAt { get; init; }
    /// <summary>chat, embeddings.</summary>
    public required string Operation { get; init; }
    public string? Agent { get; init; }
    public string? Team { get; init; }
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>The model the caller asked for (a virtual model or a model).</summary>
    public string? RequestedModel { get; init; }
    /// <summary>The model that answered, when one did.</summary>
    public string? FinalTarget { get; init; }
    public bool Stream { get; init; }
    public bool FellBack { get; init; }
    public IReadOnlyList<TraceAttempt> Attempts { get; init; } = [];
    public int Status { get; init; }
    public long InputTokens { get; init; }
    public long OutputTokens { get; init; }
    public decimal CostUsd { get; init; }
    /// <summary>Milliseconds from the request's arrival to the first byte sent to the caller.</summary>
    public double? TtftMs { get; init; }
    public double LatencyMs { get; init; }
    /// <summary>Stable error code (OpenAI error <c>code</c>) when the call failed.</summary>
    public string? ErrorCode { get; init; }
    public string? Error { get; init; }
    /// <summary>hit, miss or null when caching did not apply.</summary>
    public string? Cache { get; init; }
    /// <summary>Policy notes: rate limit and budget decisions, audit-mode would-have-blocked notes.</summary>
    public IReadOnlyList<string>? Policy { get; init; }
    /// <summary>Every guardrail verdict on the call's input and output.</summary>
    public IReadOnlyList<TraceVerdict>? Guardrails { get; init; }
    /// <summary>A tool call's particulars (<see cref="TraceKinds.ToolCall"/> only).</summary>
    public TraceToolCall? Tool { get; init; }
}

/// <summary>What a tool call was: never the caller's key, and the arguments themselves only when the fleet asks for them.</summary>
/// <param name="Server">The MCP server (<c>mcp_server</c> name).</param>
/// <param name="Name">The tool's name on that server.</param>
/// <param name="User">The human the call acted for (<c>X-Flotilla-User</c>), when given.</param>
/// <param name="ArgumentsSha256">SHA-256 of the canonical JSON of the arguments as the caller sent them.</param>
/// <param name="Arguments">The arguments, only with <c>gateway.mcp.record_arguments: true</c> (secrets scrubbed).</param>
/// <param name="ApprovalId">The approval the call waited for or ran under.</param>
/// <param name="Idempotency">executed, replayed, conflict, in_flight or unknown; null for a read-only call.</param>
/// <param name="Artifact">The owned artifact the call wrote (or tried to).</param>
public sealed record TraceToolCall(string Server, string Name, string? User, string ArgumentsSha256, string? Arguments = null,
    string? ApprovalId = null, string? Idempotency = null, string? Artifact = null);

/// <summary>The kinds of governed work one trace store records.</summary>
public static class TraceKinds
{
    public const string ModelCall = "model_call";
    public const string ToolCall = "tool_call";
    public const string RunStep = "run_step";
}

/// <summary>One guardrail's verdict on one hook; never holds the text it matched.</summary>
/// <param name="Action">block, redact or audit: what the guardrail is configured to do.</param>
/// <param name="Outcome">passed, blocked, redacted or flagged (audit).</param>
public sealed record TraceVerdict(string Hook, string Guardrail, string Action, string Outcome, string? Detail = null, double? Score = null);

/// <summary>One try of one target within a call.</summary>
/// <param name="Status">HTTP status from the upstream; 0 for a connection failure or timeout.</param>
/// <param name="Outcome">ok, status, connect_error, ttft_timeout, timeout, invalid_response, broken_stream, skipped_cooldown.</param>
public sealed record TraceAttempt(string Target, string Provider, int Status, string Outcome, double LatencyMs, string? Error = null);

/// <summary>A query over traces; every field narrows.</summary>
/// <param name="Artifact">Only tool calls that wrote (or tried to write) this artifact.</param>
public sealed record TraceQuery(string? Agent = null, DateTimeOffset? Since = null, int Limit = 50, string? Id = null, string? Artifact = null);
