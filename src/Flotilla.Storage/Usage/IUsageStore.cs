namespace Flotilla.Storage.Usage;

/// <summary>
/// Pre-aggregated usage: per hour (kept) and per minute (kept two days), per dimension value. Written in the same
/// transaction as the traces it sums, so rollups and budgets never disagree with the traces.
/// Dimensions: <c>agent</c>, <c>team</c>, <c>model</c> (the model that answered), <c>virtual_model</c> (the model
/// asked for) and <c>metadata.KEY</c>.
/// </summary>
public interface IUsageStore
{
    /// <summary>Sums per value of <paramref name="dimension"/> over whole hours from the hour containing <paramref name="since"/>.</summary>
    Task<IReadOnlyList<UsageRow>> QueryAsync(string dimension, DateTimeOffset since, DateTimeOffset? until, CancellationToken cancellationToken);

    /// <summary>Spend per value of <paramref name="dimension"/> since <paramref name="windowStart"/> (minute precision).</summary>
    Task<IReadOnlyDictionary<string, decimal>> SpendSinceAsync(string dimension, DateTimeOffset windowStart, CancellationToken cancellationToken);

    /// <summary>Deletes hourly buckets before <paramref name="hourlyBefore"/> and minute buckets before <paramref name="minuteBefore"/>,
    /// <paramref name="chunk"/> rows per transaction; returns how many were deleted.</summary>
    Task<long> PruneAsync(DateTimeOffset hourlyBefore, DateTimeOffset minuteBefore, int chunk, CancellationToken cancellationToken);
}

/// <summary>Totals for one dimension value.</summary>
public sealed record UsageRow(
    string Value, long Calls, long Errors, long Fallbacks, long CacheHits, long InputTokens, long OutputTokens, decimal CostUsd);
