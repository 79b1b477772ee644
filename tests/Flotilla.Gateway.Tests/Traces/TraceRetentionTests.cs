using Flotilla.Fleet.Loading;
using Flotilla.Gateway.Traces;
using Flotilla.Storage.Sqlite;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Traces;

/// <summary>Old traces and usage buckets are pruned by age; what budgets and the retention window still need is kept.</summary>
public sealed class TraceRetentionTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 6, 30, 12, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "flotilla-tests", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Traces_older_than_the_retention_go_and_hourly_buckets_stay_for_a_month_long_budget()
    {
        var database = new SqliteDatabase(_directory);
        var traces = new SqliteTraceStore(database);
        var usage = new SqliteUsageStore(database);
        // 3,000 traces 40 days old (more than one delete chunk), one 9 days old, one an hour old.
        var old = Enumerable.Range(0, 3000).Select(i => Trace($"old{i}", Now.AddDays(-40))).ToList();
        await traces.AppendAsync(old, CancellationToken.None);
        await traces.AppendAsync([Trace("recent", Now.AddDays(-9)), Trace("fresh", Now.AddHours(-1))], CancellationToken.None);

        var retention = Retention(database, traces, usage, "7d");
        var (deletedTraces, deletedBuckets) = await retention.PruneOnceAsync(CancellationToken.None);

        deletedTraces.ShouldBe(3001);
        var left = await traces.QueryAsync(new TraceQuery(Limit: 10_000), CancellationToken.None);
        left.Select(t => t.Id).ShouldBe(["fresh"]);
        // Hourly rollups are kept 35 days at least: the 9-day-old call still counts in cost reports; the 40-day-old ones do not.
        var rows = await usage.QueryAsync("agent", Now.AddDays(-60), null, CancellationToken.None);
        rows.Single().Calls.ShouldBe(2);
        // Minute buckets are kept two days: the 9-day-old call's minute bucket went too.
        deletedBuckets.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task The_default_retention_is_30_days()
    {
        var database = new SqliteDatabase(_directory);
        var traces = new SqliteTraceStore(database);
        await traces.AppendAsync([Trace("a", Now.AddDays(-31)), Trace("b", Now.AddDays(-29))], CancellationToken.None);
        await Retention(database, traces, new SqliteUsageStore(database), retention: null).PruneOnceAsync(CancellationToken.None);
        (await traces.QueryAsync(new TraceQuery(Limit: 10), CancellationToken.None)).Select(t => t.Id).ShouldBe(["b"]);
    }

    private static TraceRetention Retention(SqliteDatabase database, ITraceStore traces, SqliteUsageStore usage, string? retention)
    {
        _ = database;
        var yaml = $$"""
            gateway:
              providers: [ { name: sim, type: simulated } ]
              models: [ { name: m, provider: sim } ]
            {{(retention is null ? "" : $"  traces: {{ retention: {retention} }}")}}
            """;
        var loaded = FleetLoader.Parse(yaml, "fleet.yaml");
        loaded.IsValid.ShouldBeTrue(string.Join("\n", loaded.Errors));
        var time = new FakeTimeProvider(Now);
        return new TraceRetention(traces, usage, new LiveFleet(loaded.Fleet!, time), time, NullLogger<TraceRetention>.Instance);
    }

    private static TraceRecord Trace(string id, DateTimeOffset at) => new()
    {
        Id = id, StartedAt = at, Operation = "chat", Agent = "a", Status = 200, CostUsd = 0.01m,
    };

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
