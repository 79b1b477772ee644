using Flotilla.Storage.Sqlite;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Gateway.Tests.Fakes;

/// <summary>
/// The real SQLite trace store with a switch: while <see cref="Failing"/> is set, every append throws as SQLite does when
/// the disk is full (SQLITE_FULL), and nothing is written.
/// </summary>
internal sealed class FailingTraceStore(ITraceStore inner) : ITraceStore
{
    private int _failures;

    public volatile bool Failing;

    public int Failures => Volatile.Read(ref _failures);

    public Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken)
    {
        if (Failing)
        {
            Interlocked.Increment(ref _failures);
            throw new IOException("database or disk is full (simulated SQLITE_FULL)");
        }

        return inner.AppendAsync(batch, cancellationToken);
    }

    public Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken) => inner.QueryAsync(query, cancellationToken);


    public Task<long> PruneAsync(DateTimeOffset before, int chunk, CancellationToken cancellationToken) => inner.PruneAsync(before, chunk, cancellationToken);

    /// <summary>Registers <paramref name="store"/> in place of the server's trace store, around the server's own SQLite database.</summary>
    public static Action<IServiceCollection> Install(Action<FailingTraceStore> created) => services =>
        services.AddSingleton<ITraceStore>(sp =>
        {
            var store = new FailingTraceStore(new SqliteTraceStore(sp.GetRequiredService<SqliteDatabase>()));
            created(store);
            return store;
        });
}
