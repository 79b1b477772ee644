using System.Security.Cryptography;
using System.Text;
using Flotilla.Fleet.Loading;
using Flotilla.Fleet.Planning;
using Flotilla.Gateway;
using Flotilla.Storage.Fleet;
using Microsoft.Extensions.Logging;

namespace Flotilla.Server.Fleet;

/// <summary>What a plan or an apply found: the errors of an invalid fleet, or the changes and the revision in force.</summary>
/// <param name="Applied">True when this apply put a new revision in force; false for a plan, no changes, or errors.</param>
public sealed record FleetApplyResult(IReadOnlyList<string> Errors, IReadOnlyList<string> Changes, int Revision, bool Applied)
{
    public bool IsValid => Errors.Count == 0;
}

/// <summary>
/// Plans and applies fleet files on the running server (GitOps): a fleet is validated in full, compared with the one in force,
/// stored as a numbered revision with who applied it and why, then swapped in atomically. Calls in flight finish on the
/// version they started with; spend, counters, cache, target health and keys carry over (they live outside the snapshot).
/// An invalid fleet changes nothing. Applies are serialised; a plan never waits.
/// </summary>
public sealed partial class FleetApplier(
    LiveFleet fleet, IFleetRevisionStore revisions, Flotilla.Harness.Runs.HarnessOptions options, TimeProvider time, ILogger<FleetApplier> logger)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile string? _yaml;

    /// <summary>The YAML in force, when the server was given one.</summary>
    public string? CurrentYaml => _yaml;

    /// <summary>
    /// At start: the fleet the server was started with becomes the newest revision (stored when it differs from the newest
    /// stored one, applied by <c>serve</c>).
    /// </summary>
    public async Task InitializeAsync(string? yaml, CancellationToken cancellationToken)
    {
        if (yaml is null)
        {
            return;
        }

        var latest = await revisions.LatestAsync(cancellationToken);
        var sha = Sha256(yaml);
        var number = latest is not null && latest.Sha256 == sha
            ? latest.Number
            : (await revisions.AddAsync(yaml, sha, "serve", FleetPlan.Compare(latest?.Yaml, yaml), time.GetUtcNow(), cancellationToken)).Number;
        _yaml = yaml;
        fleet.Apply(fleet.Fleet, number);
    }

    /// <summary>
    /// Parses and validates <paramref name="yaml"/>; its pinned instructions and skills must be beside the fleet file this
    /// server serves (where its runs read them).
    /// </summary>
    private FleetLoadResult Load(string yaml, string file)
    {
        var loaded = FleetLoader.Parse(yaml, file);
        if (!loaded.IsValid || options.FleetDirectory is not { } directory)
        {
            return loaded;
        }

        var missing = Flotilla.Fleet.PinnedFiles.Check(loaded.Fleet!, Path.Combine(directory, Path.GetFileName(file) is { Length: > 0 } name ? name : "fleet.yaml"));
        return missing.Count == 0 ? loaded : new FleetLoadResult(null, missing);
    }

    /// <summary>Validates <paramref name="yaml"/> and lists what applying it would change; changes nothing.</summary>
    public FleetApplyResult Plan(string yaml, string file)
    {
        var loaded = Load(yaml, file);
        return loaded.IsValid
            ? new FleetApplyResult([], FleetPlan.Compare(_yaml, yaml), fleet.Revision, Applied: false)
            : new FleetApplyResult(loaded.Errors.Select(e => e.ToString()).ToList(), [], fleet.Revision, Applied: false);
    }

    /// <summary>Validates, stores and puts <paramref name="yaml"/> in force; with errors or no changes, nothing changes.</summary>
    public async Task<FleetApplyResult> ApplyAsync(string yaml, string file, string appliedBy, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var loaded = Load(yaml, file);
            if (!loaded.IsValid)
            {
                return new FleetApplyResult(loaded.Errors.Select(e => e.ToString()).ToList(), [], fleet.Revision, Applied: false);
            }

            var changes = FleetPlan.Compare(_yaml, yaml);
            if (changes.Count == 0)
            {
                return new FleetApplyResult([], [], fleet.Revision, Applied: false);
            }

            // Stored first: if the store refuses, the fleet in force does not change either.
            var revision = await revisions.AddAsync(yaml, Sha256(yaml), appliedBy, changes, time.GetUtcNow(), cancellationToken);
            fleet.Apply(loaded.Fleet!, revision.Number);
            _yaml = yaml;
            LogApplied(logger, revision.Number, appliedBy, changes.Count);
            return new FleetApplyResult([], changes, revision.Number, Applied: true);
        }
        finally
        {
            _gate.Release();
        }
    }

    public static string Sha256(string yaml) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)));

    [LoggerMessage(Level = LogLevel.Information, Message = "Fleet revision {Revision} applied by {By}: {Count} changes")]
    private static partial void LogApplied(ILogger logger, int revision, string by, int count);
}
