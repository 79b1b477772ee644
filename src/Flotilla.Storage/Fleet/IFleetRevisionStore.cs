namespace Flotilla.Storage.Fleet;

/// <summary>
/// One applied version of the fleet file: its number (1, 2, …), when and by whom it was applied, the SHA-256 of the YAML,
/// the change summary against the revision before it, and the YAML itself (so any revision can be applied again).
/// </summary>
public sealed record FleetRevision(int Number, DateTimeOffset AppliedAt, string AppliedBy, string Sha256, IReadOnlyList<string> Changes, string? Yaml);

/// <summary>Every applied fleet revision, kept for audit and one-step rollback.</summary>
public interface IFleetRevisionStore
{
    /// <summary>Stores a new revision numbered one above the latest and returns it.</summary>
    Task<FleetRevision> AddAsync(string yaml, string sha256, string appliedBy, IReadOnlyList<string> changes, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>The revision with its YAML, or null.</summary>
    Task<FleetRevision?> GetAsync(int number, CancellationToken cancellationToken);

    /// <summary>The newest revision with its YAML, or null when none was stored.</summary>
    Task<FleetRevision?> LatestAsync(CancellationToken cancellationToken);

    /// <summary>Newest first, without the YAML.</summary>
    Task<IReadOnlyList<FleetRevision>> ListAsync(int limit, CancellationToken cancellationToken);
}
