using Flotilla.Governance.Fleet;
using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Governance.Traces;

/// <summary>
/// Prunes old records once an hour (and once shortly after start): traces older than <c>gateway.traces.retention</c>,
/// hourly usage buckets older than the retention or 35 days, whichever is longer (a month-long budget window is restored
/// from them), and minute buckets older than two days (they serve only short windows). Deletes in small chunks off the
/// request path, so the trace writer never waits long for the database.
/// </summary>
public sealed partial class TraceRetention(ITraceStore traces, IUsageStore usage, LiveFleet fleet, TimeProvider time, ILogger<TraceRetention> logger)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromHours(1);
    private static readonly TimeSpan MinimumHourlyBuckets = TimeSpan.FromDays(35);
    private static readonly TimeSpan MinuteBuckets = TimeSpan.FromDays(2);
    private const int Chunk = 2_000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await Task.Delay(TimeSpan.FromMinutes(1), time, stoppingToken);
            using var timer = new PeriodicTimer(Interval, time);
            do
            {
                await PruneOnceAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pruning pass; returns the traces and buckets deleted.</summary>
    public async Task<(long Traces, long Buckets)> PruneOnceAsync(CancellationToken cancellationToken)
    {
        var retention = fleet.Fleet.Gateway.Traces.Retention;
        var now = time.GetUtcNow();
        try
        {
            var deletedTraces = await traces.PruneAsync(now - retention, Chunk, cancellationToken);
            var hourly = retention > MinimumHourlyBuckets ? retention : MinimumHourlyBuckets;
            var deletedBuckets = await usage.PruneAsync(now - hourly, now - MinuteBuckets, Chunk, cancellationToken);
            if (deletedTraces > 0)
            {
                LogPruned(logger, deletedTraces, deletedBuckets, retention);
            }

            return (deletedTraces, deletedBuckets);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogPruneFailed(logger, e);
            return (0, 0);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned {Traces} traces and {Buckets} usage buckets older than the retention of {Retention}")]
    private static partial void LogPruned(ILogger logger, long traces, long buckets, TimeSpan retention);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pruning old traces failed; will try again in an hour")]
    private static partial void LogPruneFailed(ILogger logger, Exception exception);
}
