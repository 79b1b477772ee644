using Flotilla.Gateway.Traces;
using Flotilla.Gateway.Tests.Fakes;
using Flotilla.Storage.Alerts;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Flotilla.Gateway.Tests.Traces;

/// <summary>The writer's order of preference when the store refuses: the journal, then memory; nothing is dropped.</summary>
public sealed class TraceWriterTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "flotilla-tests", Guid.NewGuid().ToString("N"));

    public TraceWriterTests() => Directory.CreateDirectory(_directory);

    [Fact]
    public async Task When_neither_store_nor_journal_takes_a_trace_it_is_held_in_memory_until_the_store_recovers()
    {
        var store = new ListStore { Failing = true };
        // A journal inside a file cannot be created: the disk-full case, where nothing but memory can hold the traces.
        var blocker = Path.Combine(_directory, "not-a-directory");
        await File.WriteAllTextAsync(blocker, "", TestContext.Current.CancellationToken);
        var writer = NewWriter(store, new TraceJournal(Path.Combine(blocker, "spill.jsonl")));
        await writer.StartAsync(CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            await writer.EnqueueAsync(Trace($"t{i}"));
        }

        await Until(() => writer.Failure is { Held: 3 });
        store.Stored.ShouldBeEmpty();

        store.Failing = false;
        await Until(() => writer.Failure is null && store.Stored.Count == 3);
        store.Stored.Select(t => t.Id).ShouldBe(["t0", "t1", "t2"]);
        await writer.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task A_journal_is_replayed_once_even_if_replay_is_repeated()
    {
        var store = new ListStore();
        var journal = new TraceJournal(Path.Combine(_directory, TraceJournal.FileName));
        journal.Append([Trace("a"), Trace("b")]);
        File.AppendAllText(journal.Path, "{\"id\":\"torn");  // a write cut short by a crash
        var (replayed, unreadable) = await journal.ReplayAsync(store, 512, CancellationToken.None);
        (replayed, unreadable).ShouldBe((2, 1));
        journal.HasEntries.ShouldBeFalse();
        store.Stored.Select(t => t.Id).ShouldBe(["a", "b"]);
        store.Stored[0].CostUsd.ShouldBe(0.25m);
    }

    private static TraceWriter NewWriter(ITraceStore store, TraceJournal journal)
    {
        var alerts = new AlertDispatcher(new NullAlertStore(), null!, TimeProvider.System, NullLogger<AlertDispatcher>.Instance);
        return new TraceWriter(store, journal, alerts, TimeProvider.System, NullLogger<TraceWriter>.Instance);
    }

    private static TraceRecord Trace(string id) => new()
    {
        Id = id, StartedAt = DateTimeOffset.UnixEpoch, Operation = "chat", Agent = "a", Status = 200, CostUsd = 0.25m,
    };

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the condition did not hold in time");
            }

            await Task.Delay(10);
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private sealed class ListStore : ITraceStore
    {
        private readonly List<TraceRecord> _stored = [];

        public volatile bool Failing;

        public List<TraceRecord> Stored
        {
            get
            {
                lock (_stored)
                {
                    return [.. _stored];
                }
            }
        }

        public Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken)
        {
            if (Failing)
            {
                throw new IOException("disk full");
            }

            lock (_stored)
            {
                _stored.AddRange(batch.Where(t => _stored.All(s => s.Id != t.Id)));
            }

            return Task.CompletedTask;
        }

        public Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken) => throw new NotSupportedException();


        public Task<long> PruneAsync(DateTimeOffset before, int chunk, CancellationToken cancellationToken) => Task.FromResult(0L);
    }
}
