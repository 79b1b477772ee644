namespace Flotilla.Storage.Alerts;

/// <summary>A fleet event an operator should see: a budget threshold crossed, a call a budget in audit mode would have refused.</summary>
public sealed record AlertRecord
{
    public required string Id { get; init; }
    public required DateTimeOffset At { get; init; }
    /// <summary>budget_threshold or budget_would_block.</summary>
    public required string Kind { get; init; }
    public required string Message { get; init; }
    /// <summary>The rule's scope, e.g. agent, team, metadata.loop.</summary>
    public string? AppliesPer { get; init; }
    public string? Key { get; init; }
    public int? Threshold { get; init; }
    public decimal? SpentUsd { get; init; }
    public decimal? LimitUsd { get; init; }
    public DateTimeOffset? WindowStart { get; init; }
    public DateTimeOffset? WindowEnd { get; init; }
    /// <summary>pending, delivered, failed or none (no webhook configured).</summary>
    public string Delivery { get; init; } = "none";
}

public interface IAlertStore
{
    Task AddAsync(AlertRecord alert, CancellationToken cancellationToken);

    Task SetDeliveryAsync(string id, string delivery, CancellationToken cancellationToken);

    /// <summary>Newest first.</summary>
    Task<IReadOnlyList<AlertRecord>> ListAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken);
}
