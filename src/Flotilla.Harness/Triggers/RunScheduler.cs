using Cronos;
using Flotilla.Fleet;
using Flotilla.Governance.Fleet;
using Flotilla.Harness.Runs;
using Flotilla.Storage.Runs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Harness.Triggers;

/// <summary>
/// The heartbeat: starts a run of each scheduled agent when its cron expression comes due (in its time zone, UTC by
/// default). A beat while the agent already has <c>trigger.concurrency</c> runs that are not over is skipped and logged.
/// The last beat is persisted, so beats missed while Flotilla was down are known at the next start: skipped, or (with
/// <c>missed: run_once</c>) answered with one run. A fleet applied while running takes effect at the next tick.
/// </summary>
public sealed partial class RunScheduler(IRunStore store, RunEngine engine, LiveFleet fleet, TimeProvider time, ILogger<RunScheduler> logger) : BackgroundService
{
    /// <summary>How often schedules are checked.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private readonly HashSet<string> _caughtUp = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _one = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(Tick, time);
            do
            {
                try
                {
                    await BeatAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogTickFailed(logger, e);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One check of every schedule: starts the runs that are due.</summary>
    public async Task BeatAsync(CancellationToken cancellationToken)
    {
        // One check at a time: two would both see a beat due and start it twice.
        await _one.WaitAsync(cancellationToken);
        try
        {
            await CheckAsync(cancellationToken);
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task CheckAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        foreach (var agent in fleet.Current.Config.Agents)
        {
            if (agent.Trigger is not { Schedule: { } schedule } trigger)
            {
                continue;
            }

            var cron = CronExpression.Parse(schedule);
            var zone = trigger.TimeZone is { } id && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var found) ? found : TimeZoneInfo.Utc;
            var last = await store.LastBeatAsync(agent.Name, cancellationToken);
            if (last is null)
            {
                // First sight of this schedule: it starts counting now, with no back-fill.
                await store.SetLastBeatAsync(agent.Name, now, cancellationToken);
                _caughtUp.Add(agent.Name);
                continue;
            }

            var due = cron.GetOccurrences(last.Value.UtcDateTime, now.UtcDateTime, zone, fromInclusive: false, toInclusive: true).ToList();
            if (due.Count == 0)
            {
                _caughtUp.Add(agent.Name);
                continue;
            }

            // Beats due before this process started were missed while it was down; later ones are simply due.
            var missed = !_caughtUp.Contains(agent.Name) && due.Count > 0 && now - new DateTimeOffset(due[^1], TimeSpan.Zero) > Tick * 5;
            _caughtUp.Add(agent.Name);
            await store.SetLastBeatAsync(agent.Name, new DateTimeOffset(due[^1], TimeSpan.Zero), cancellationToken);
            if (missed && trigger.Missed == MissedBeats.Skip)
            {
                LogMissedSkipped(logger, agent.Name, due.Count);
                continue;
            }

            if (await store.ActiveCountAsync(agent.Name, cancellationToken) >= trigger.Concurrency)
            {
                LogBusySkipped(logger, agent.Name, trigger.Concurrency);
                continue;
            }

            var input = trigger.Input ?? $"Scheduled run of {agent.Name} ({schedule}{(trigger.TimeZone is null ? "" : " " + trigger.TimeZone)}).";
            var run = await engine.StartAsync(agent.Name, input, missed ? "schedule (missed)" : "schedule", cancellationToken);
            LogStarted(logger, run.Id, agent.Name, missed ? due.Count : 0);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Scheduled run {RunId} of {Agent} started (missed beats answered: {Missed})")]
    private static partial void LogStarted(ILogger logger, string runId, string agent, int missed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Beat of {Agent} skipped: {Concurrency} run(s) of it are not over yet (trigger.concurrency)")]
    private static partial void LogBusySkipped(ILogger logger, string agent, int concurrency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} beat(s) of {Agent} were missed while Flotilla was down; skipped (trigger.missed: skip)")]
    private static partial void LogMissedSkipped(ILogger logger, string agent, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "A schedule check failed; the next tick tries again")]
    private static partial void LogTickFailed(ILogger logger, Exception exception);
}
