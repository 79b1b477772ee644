namespace Flotilla.Storage.Mcp;

/// <summary>Where an approval stands. Only <see cref="Pending"/> may be decided; only <see cref="Approved"/> may be consumed, once.</summary>
public static class ApprovalStatus
{
    public const string Pending = "pending";
    public const string Approved = "approved";
    public const string Denied = "denied";
    public const string Expired = "expired";

    /// <summary>Approved and used by the one call it was for.</summary>
    public const string Consumed = "consumed";
}

/// <summary>
/// A destructive tool call waiting for (or past) a human's decision. Bound to exactly one call: the agent, server, tool and
/// the SHA-256 of the canonical arguments. The arguments are kept (secrets scrubbed) so the human sees what they approve.
/// </summary>
public sealed record ApprovalRecord
{
    public required string Id { get; init; }
    public required string Agent { get; init; }
    /// <summary>The harness run that asked, when a run did (resumed from here once decided).</summary>
    public string? Run { get; init; }
    /// <summary>The human the call acts for (<c>X-Flotilla-User</c>).</summary>
    public string? User { get; init; }
    public required string Server { get; init; }
    public required string Tool { get; init; }
    /// <summary>The canonical JSON of the arguments, secrets scrubbed.</summary>
    public required string Arguments { get; init; }
    public required string ArgumentsSha256 { get; init; }
    public required DateTimeOffset RequestedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
    public string Status { get; init; } = ApprovalStatus.Pending;
    public string? DecidedBy { get; init; }
    public DateTimeOffset? DecidedAt { get; init; }
    public string? Reason { get; init; }
    public DateTimeOffset? ConsumedAt { get; init; }
}

public interface IApprovalStore
{
    Task AddAsync(ApprovalRecord approval, CancellationToken cancellationToken);

    Task<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken);

    /// <summary>The newest approval for exactly this call (agent, the user it acts for, server, tool, arguments), whatever its status.</summary>
    Task<ApprovalRecord?> LatestForAsync(string agent, string? user, string server, string tool, string argumentsSha256, CancellationToken cancellationToken);

    /// <summary>Newest first; <paramref name="status"/> narrows.</summary>
    Task<IReadOnlyList<ApprovalRecord>> ListAsync(string? status, int limit, CancellationToken cancellationToken);

    /// <summary>Moves a pending approval to <paramref name="status"/> (approved, denied or expired); false when it was not pending.</summary>
    Task<bool> DecideAsync(string id, string status, string decidedBy, string? reason, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Marks an approved approval consumed; false when it was not approved (already used, or never approved).</summary>
    Task<bool> ConsumeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken);
}
