namespace Flotilla.Storage.Mcp;

/// <summary>Where a keyed side-effecting call stands.</summary>
public static class IdempotencyState
{
    /// <summary>Sent to the server; its outcome not recorded yet.</summary>
    public const string InFlight = "in_flight";

    /// <summary>Answered; the result is kept for replay.</summary>
    public const string Done = "done";

    /// <summary>Was in flight when Flotilla stopped: it may or may not have happened. A human must check.</summary>
    public const string Unknown = "unknown";
}

/// <summary>A side-effecting call recorded against its idempotency key, scoped to the agent.</summary>
public sealed record IdempotencyRecord
{
    public required string Agent { get; init; }
    public required string Key { get; init; }
    public required string Server { get; init; }
    public required string Tool { get; init; }
    public required string ArgumentsSha256 { get; init; }
    public required string State { get; init; }
    /// <summary>The result the caller got (after guardrails), as MCP JSON, once done.</summary>
    public string? Result { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
}

public interface IIdempotencyStore
{
    /// <summary>The live record for the key, or null (none, or expired).</summary>
    Task<IdempotencyRecord?> GetAsync(string agent, string key, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Records a call as in flight before it is sent (durably: a crash after this leaves it <c>unknown</c>).
    /// False when a live record for the key exists already.</summary>
    Task<bool> BeginAsync(IdempotencyRecord record, CancellationToken cancellationToken);

    Task CompleteAsync(string agent, string key, string result, CancellationToken cancellationToken);

    /// <summary>The call was sent and no answer came (a timeout): it may have happened. Retries are refused until a human looks.</summary>
    Task MarkUnknownAsync(string agent, string key, CancellationToken cancellationToken);

    /// <summary>The call failed before the server could act (refused, unreachable): the key is free again.</summary>
    Task ForgetAsync(string agent, string key, CancellationToken cancellationToken);

    /// <summary>At start: every call still in flight was interrupted; its outcome is unknown. Returns how many.</summary>
    Task<int> MarkInFlightUnknownAsync(CancellationToken cancellationToken);

    Task<long> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken);
}
