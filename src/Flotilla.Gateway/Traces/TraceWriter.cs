using System.Threading.Channels;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Traces;

/// <summary>
/// Takes traces off the request path: requests enqueue into a bounded channel, one background loop writes batches.
/// When the channel is full, callers wait for room rather than lose a trace.
/// </summary>
internal sealed partial class TraceWriter(ITraceStore store, ILogger<TraceWriter> logger) : BackgroundService
{
    private const int Capacity = 32_768;
    private const int MaxBatch = 512;
    private static readonly TimeSpan Linger = TimeSpan.FromMilliseconds(100);
    private readonly Channel<TraceRecord> _channel = Channel.CreateBounded<TraceRecord>(new BoundedChannelOptions(Capacity)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    private long _written;

    public long Written => Interlocked.Read(ref _written);

    public ValueTask EnqueueAsync(TraceRecord trace) =>
        _channel.Writer.TryWrite(trace) ? ValueTask.CompletedTask : _channel.Writer.WriteAsync(trace);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<TraceRecord>(MaxBatch);
        var reader = _channel.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
            {
                // Linger a moment so a trickle of calls becomes one transaction instead of one per call: each write
                // costs the gateway's core far more than the wait costs anyone.
                if (reader.Count < MaxBatch)
                {
                    try
                    {
                        await Task.Delay(Linger, stoppingToken);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                }

                await DrainAsync(batch);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Shutdown: write what is still queued.
        _channel.Writer.TryComplete();
        await DrainAsync(batch);
    }

    private async Task DrainAsync(List<TraceRecord> batch)
    {
        while (true)
        {
            batch.Clear();
            while (batch.Count < MaxBatch && _channel.Reader.TryRead(out var trace))
            {
                batch.Add(trace);
            }

            if (batch.Count == 0)
            {
                return;
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await store.AppendAsync(batch, CancellationToken.None);
                    Interlocked.Add(ref _written, batch.Count);
                    break;
                }
                catch (Exception e) when (attempt < 5)
                {
                    LogWriteRetry(logger, batch.Count, attempt, e);
                    await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt));
                }
                catch (Exception e)
                {
                    LogWriteFailed(logger, batch.Count, e);
                    break;
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Writing {Count} traces failed (attempt {Attempt}); retrying")]
    private static partial void LogWriteRetry(ILogger logger, int count, int attempt, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Count} traces failed; they are lost")]
    private static partial void LogWriteFailed(ILogger logger, int count, Exception exception);
}
