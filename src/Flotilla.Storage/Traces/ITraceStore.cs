namespace Flotilla.Storage.Traces;

/// <summary>Where traces are kept. Writes arrive in batches from the background writer, never from the request path.</summary>
public interface ITraceStore
{
    /// <summary>Writes a batch atomically. Idempotent per trace id: a trace already stored is neither stored nor counted again.</summary>
    Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken);

    /// <summary>Newest first.</summary>
    Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken);

    /// <summary>Deletes traces that started before <paramref name="before"/>, <paramref name="chunk"/> per transaction; returns how many.</summary>
    Task<long> PruneAsync(DateTimeOffset before, int chunk, CancellationToken cancellationToken);
}
