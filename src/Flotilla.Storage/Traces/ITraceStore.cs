namespace Flotilla.Storage.Traces;

/// <summary>Where traces are kept. Writes arrive in batches from the background writer, never from the request path.</summary>
public interface ITraceStore
{
    Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken);

    /// <summary>Newest first.</summary>
    Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken);

    Task<long> CountAsync(CancellationToken cancellationToken);
}
