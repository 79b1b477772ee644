using System.Threading.Channels;
using Flotilla.Governance.Alerts;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Governance.Traces;

/// <summary>
/// Takes traces off the request path: requests enqueue into a bounded channel, one background loop writes batches.
/// Traces carry spend, so none is dropped: a batch the store refuses goes to the spill journal, and when the journal cannot
/// be written either (a full disk) it is held in memory and retried; once the memory allowance is used, the channel fills and
/// callers wait for room (backpressure) rather than lose a trace. While the store is failing the writer reports unhealthy
/// (<c>/readyz</c> answers 503) and raises one alert; the journal is replayed into the store as soon as a write succeeds.
/// </summary>
public sealed partial class TraceWriter(ITraceStore store, TraceJournal journal, AlertDispatcher alerts, TimeProvider time, ILogger<TraceWriter> logger)
    : BackgroundService
{
    private const int Capacity = 32_768;
    private const int MaxBatch = 512;

    /// <summary>Traces held in memory while neither the store nor the journal takes them; past this, callers wait.</summary>
    private const int MaxHeld = 65_536;

    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RetryFirst = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(2);
    private readonly Channel<TraceRecord> _channel = Channel.CreateBounded<TraceRecord>(new BoundedChannelOptions(Capacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private readonly List<TraceRecord> _held = [];
    private long _written;
    private long _journalled;
    private long _failedWrites;
    private volatile StoreFailure? _failure;

    public long Written => Interlocked.Read(ref _written);

    /// <summary>Traces that went to the spill journal because the store refused them.</summary>
    public long Journalled => Interlocked.Read(ref _journalled);

    /// <summary>Null while the store takes every write; otherwise when it began failing, why, and how much is waiting.</summary>
    public StoreFailure? Failure => _failure;

    public int QueueDepth => _channel.Reader.Count;

    /// <summary>Store writes that failed since start.</summary>
    public long FailedWrites => Interlocked.Read(ref _failedWrites);

    public ValueTask EnqueueAsync(TraceRecord trace) =>
        _channel.Writer.TryWrite(trace) ? ValueTask.CompletedTask : WriteSlowAsync(trace);

    private async ValueTask WriteSlowAsync(TraceRecord trace)
    {
        try
        {
            await _channel.Writer.WriteAsync(trace);
        }
        catch (ChannelClosedException)
        {
            // A call that finished after shutdown began: straight to the journal, which the next start replays.
            try
            {
                journal.Append([trace]);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogLost(logger, 1, journal.Path);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = _channel.Reader;
        var retryDelay = RetryFirst;
        try
        {
            while (true)
            {
                if (_failure is null)
                {
                    if (!await reader.WaitToReadAsync(stoppingToken))
                    {
                        break;
                    }

                    // Linger a moment so a trickle of calls becomes one transaction instead of one per call: each write
                    // costs the gateway's core far more than the wait costs anyone.
                    if (reader.Count < MaxBatch)
                    {
                        await Task.Delay(Linger, stoppingToken);
                    }
                }
                else
                {
                    // Failing: try again after a backoff, whether or not new traces arrive.
                    await Task.Delay(retryDelay, stoppingToken);
                    retryDelay = TimeSpan.FromTicks(Math.Min(retryDelay.Ticks * 2, RetryMax.Ticks));
                }

                await PersistAsync(final: false);
                if (_failure is null)
                {
                    retryDelay = RetryFirst;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Shutdown: write what is still queued or held; what the store will not take goes to the journal.
        _channel.Writer.TryComplete();
        await PersistAsync(final: true);
        if (_held.Count + _channel.Reader.Count > 0)
        {
            LogLost(logger, _held.Count + _channel.Reader.Count, journal.Path);
        }
    }

    /// <summary>Moves queued traces to the store, or the journal, or memory, in that order of preference.</summary>
    private async Task PersistAsync(bool final)
    {
        while (true)
        {
            var room = MaxHeld - _held.Count;
            while (room-- > 0 && _channel.Reader.TryRead(out var trace))
            {
                _held.Add(trace);
            }

            if (_held.Count == 0)
            {
                if (_failure is not null)
                {
                    await TryReplayAsync();
                }

                return;
            }

            var batch = _held.Count <= MaxBatch ? _held : _held.GetRange(0, MaxBatch);
            if (await TryStoreAsync(batch))
            {
                _held.RemoveRange(0, batch == _held ? _held.Count : batch.Count);
                continue;
            }

            // The store refused: keep everything in the journal if it will take it, else in memory until either recovers.
            try
            {
                journal.Append(_held);
                Interlocked.Add(ref _journalled, _held.Count);
                LogJournalled(logger, _held.Count, journal.Path);
                _held.Clear();
                _failure = _failure! with { Held = 0, JournalFailing = false };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Said once per episode: a retry every two seconds must not flood the log at 3 a.m.
                if (!_failure!.JournalFailing)
                {
                    LogJournalFailed(logger, e.Message);
                }

                _failure = _failure with { Held = _held.Count, JournalFailing = true };
                return;
            }

            if (!final && _channel.Reader.Count == 0)
            {
                return;
            }
        }
    }

    private async Task<bool> TryStoreAsync(IReadOnlyList<TraceRecord> batch)
    {
        try
        {
            await store.AppendAsync(batch, CancellationToken.None);
            Interlocked.Add(ref _written, batch.Count);
        }
        catch (Exception e)
        {
            MarkFailing(e);
            return false;
        }

        if (_failure is not null)
        {
            await TryReplayAsync();
        }

        return true;
    }

    /// <summary>The store took a write again: bring the journal back in, then report healthy.</summary>
    private async Task<bool> TryReplayAsync()
    {
        try
        {
            var (replayed, _) = await journal.ReplayAsync(store, MaxBatch, CancellationToken.None);
            var failure = _failure;
            _failure = null;
            if (failure is not null)
            {
                LogRecovered(logger, failure.Since, replayed);
                alerts.PublishSystem("trace_store_recovered", $"The trace store accepts writes again (failing since {failure.Since:u}); {replayed} journalled traces were written back.");
            }

            return true;
        }
        catch (Exception e)
        {
            MarkFailing(e);
            return false;
        }
    }

    private void MarkFailing(Exception e)
    {
        Interlocked.Increment(ref _failedWrites);
        if (_failure is not null)
        {
            _failure = _failure with { Error = e.Message, Held = _held.Count };
            return;
        }

        _failure = new StoreFailure(time.GetUtcNow(), e.Message, _held.Count, JournalFailing: false);
        LogStoreFailing(logger, e.Message);
        alerts.PublishSystem("trace_store_failing",
            $"The trace store refuses writes ({e.Message}); traces and spend go to the spill journal {journal.Path} or are held in memory until it recovers. /readyz answers 503 meanwhile.");
    }

    /// <summary>
    /// Writes back what an earlier run journalled. Runs at start-up before budgets are restored from the store, so spend
    /// charged while the store was failing is counted again. Throws what the store throws.
    /// </summary>
    public async Task ReplayJournalAtStartAsync(CancellationToken cancellationToken)
    {
        if (!journal.HasEntries)
        {
            return;
        }

        var (replayed, unreadable) = await journal.ReplayAsync(store, MaxBatch, cancellationToken);
        LogReplayedAtStart(logger, replayed, unreadable, journal.Path);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The trace store refuses writes ({Reason}); traces go to the spill journal or stay in memory until it recovers")]
    private static partial void LogStoreFailing(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Count} traces written to the spill journal {Path}")]
    private static partial void LogJournalled(ILogger logger, int count, string path);

    [LoggerMessage(Level = LogLevel.Error, Message = "The spill journal cannot be written either ({Reason}); traces are held in memory until the store or the journal takes them (/readyz shows how many)")]
    private static partial void LogJournalFailed(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The trace store recovered (failing since {Since}); {Replayed} journalled traces written back")]
    private static partial void LogRecovered(ILogger logger, DateTimeOffset since, int replayed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Replayed {Replayed} traces from the spill journal {Path} ({Unreadable} unreadable lines skipped)")]
    private static partial void LogReplayedAtStart(ILogger logger, int replayed, int unreadable, string path);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Shutting down with {Count} traces that neither the store nor the spill journal {Path} would take; they are lost")]
    private static partial void LogLost(ILogger logger, int count, string path);
}

/// <summary>The trace store has been refusing writes since <paramref name="Since"/>; <paramref name="Held"/> traces wait in memory.</summary>
public sealed record StoreFailure(DateTimeOffset Since, string Error, int Held, bool JournalFailing);
