using Flotilla.Storage.Mcp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Mcp.Idempotency;

/// <summary>
/// At start, before the gateway serves: calls that were in flight when the last process stopped become <c>unknown</c>
/// (a retry is refused for a human to check). Then hourly: expired idempotency keys are pruned.
/// </summary>
internal sealed partial class McpHousekeeping(IIdempotencyStore store, TimeProvider time, ILogger<McpHousekeeping> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var interrupted = await store.MarkInFlightUnknownAsync(cancellationToken);
        if (interrupted > 0)
        {
            LogInterrupted(logger, interrupted);
        }

        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        do
        {
            try
            {
                await store.PruneAsync(time.GetUtcNow(), stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPruneFailed(logger, e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} side-effecting tool calls were in flight when Flotilla last stopped; their outcome is unknown and retries with their keys are refused until a human checks")]
    private static partial void LogInterrupted(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "pruning expired idempotency keys failed: {Reason}")]
    private static partial void LogPruneFailed(ILogger logger, string reason);
}
