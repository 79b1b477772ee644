namespace Flotilla.Storage.Runs;

/// <summary>Where a run stands.</summary>
public static class RunStatus
{
    public const string Running = "running";
    public const string AwaitingApproval = "awaiting_approval";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string LimitReached = "limit_reached";
    public const string Stuck = "stuck";
    public const string Denied = "denied";
    public const string Cancelled = "cancelled";
    public const string NeedsIntervention = "needs_intervention";

    /// <summary>Whether a run in <paramref name="status"/> is over (nothing resumes it on its own).</summary>
    public static bool IsTerminal(string status) => status is Completed or Failed or LimitReached or Stuck or Denied or Cancelled;
}

/// <summary>One run of a loop: what it was asked, where it stands, and what it has used so far.</summary>
public sealed record RunRecord
{
    public required string Id { get; init; }
    public required string Agent { get; init; }
    public string? ParentId { get; init; }
    public required string Status { get; init; }

    /// <summary>Why it ended or waits (which limit, the error, the approval); null while it runs normally.</summary>
    public string? Reason { get; init; }
    public required string Input { get; init; }

    /// <summary>The final answer, once completed.</summary>
    public string? Output { get; init; }

    /// <summary>What started it: <c>api</c>, <c>cli</c>, <c>schedule</c>, <c>webhook</c>.</summary>
    public required string Trigger { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public int Steps { get; init; }
    public long InputTokens { get; init; }
    public long OutputTokens { get; init; }
    public decimal CostUsd { get; init; }
}

/// <summary>
/// One step of a run, persisted before the next begins: a model call (its answer, as a Chat Completions assistant message)
/// or a tool call (its request and result). A step still <c>started</c> after a restart was interrupted.
/// </summary>
public sealed record RunStepRecord
{
    public required string RunId { get; init; }
    public required int Seq { get; init; }

    /// <summary><c>model</c> or <c>tool</c>.</summary>
    public required string Kind { get; init; }

    /// <summary><c>started</c> or <c>done</c>.</summary>
    public required string Status { get; init; }

    /// <summary>The model route, or the tool's exposed name.</summary>
    public string? Name { get; init; }

    /// <summary>A tool step's call: <c>{"id","name","arguments"}</c>.</summary>
    public string? Request { get; init; }

    /// <summary>A model step's assistant message (JSON); a tool step's result text.</summary>
    public string? Result { get; init; }
    public bool IsError { get; init; }
    public long InputTokens { get; init; }
    public long OutputTokens { get; init; }
    public decimal CostUsd { get; init; }
    public double LatencyMs { get; init; }
    public string? TraceId { get; init; }
    public string? ApprovalId { get; init; }

    /// <summary>A delegation's sub-run, once started.</summary>
    public string? ChildRunId { get; init; }
    public required DateTimeOffset StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
}

public interface IRunStore
{
    Task CreateAsync(RunRecord run, CancellationToken cancellationToken);

    Task UpdateAsync(RunRecord run, CancellationToken cancellationToken);

    Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>Newest first.</summary>
    Task<IReadOnlyList<RunRecord>> ListAsync(string? agent, string? status, int limit, CancellationToken cancellationToken);

    /// <summary>Runs that were running when the process stopped.</summary>
    Task<IReadOnlyList<RunRecord>> RunningAsync(CancellationToken cancellationToken);

    /// <summary>Inserts or replaces the step (committed before this returns).</summary>
    Task PutStepAsync(RunStepRecord step, CancellationToken cancellationToken);

    /// <summary>The run's steps in order.</summary>
    Task<IReadOnlyList<RunStepRecord>> StepsAsync(string runId, CancellationToken cancellationToken);

    /// <summary>Runs of <paramref name="agent"/> that are not over (running, waiting for approval, needing a human).</summary>
    Task<int> ActiveCountAsync(string agent, CancellationToken cancellationToken);

    /// <summary>When the agent's schedule last fired (a beat taken or skipped); null before the first.</summary>
    Task<DateTimeOffset?> LastBeatAsync(string agent, CancellationToken cancellationToken);

    Task SetLastBeatAsync(string agent, DateTimeOffset at, CancellationToken cancellationToken);
}
