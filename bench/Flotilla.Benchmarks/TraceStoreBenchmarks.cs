using System.Buffers.Binary;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Flotilla.Storage.Sqlite;
using Flotilla.Storage.Traces;

namespace Flotilla.Benchmarks;

/// <summary>
/// The trace writer's unit of work: one SQLite transaction holding <see cref="Batch"/> traces (with the usage buckets they
/// feed), as the background writer commits them. Divide by <see cref="Batch"/> for the cost per call.
/// <see cref="Ids"/>: <c>random</c> is the gateway's trace id today (128 random bits); <c>time-ordered</c> puts a
/// millisecond timestamp in front, so the table's B-trees grow at one end instead of everywhere.
/// </summary>
[MemoryDiagnoser]
public class TraceStoreBenchmarks
{
    private string _directory = null!;
    private SqliteTraceStore _store = null!;
    private TraceRecord _template = null!;

    private long _sequence;

    [Params(1, 32, 512)]
    public int Batch { get; set; }

    [Params("random", "time-ordered")]
    public string Ids { get; set; } = "random";

    [GlobalSetup]
    public void Setup()
    {
        _directory = Path.Combine(Path.GetTempPath(), "flotilla-bench-traces-" + Guid.NewGuid().ToString("N"));
        _store = new SqliteTraceStore(new SqliteDatabase(_directory));
        _template = new TraceRecord
        {
            Id = "",
            StartedAt = DateTimeOffset.UtcNow,
            Operation = "chat",
            Agent = "bench-agent",
            Team = "bench-team",
            RequestedModel = "bench",
            FinalTarget = "model-a",
            Attempts = [new TraceAttempt("model-a", "upstream", 200, "ok", 0.412)],
            Status = 200,
            InputTokens = 231,
            OutputTokens = 19,
            CostUsd = 0.0000460m,
            TtftMs = 0.52,
            LatencyMs = 0.53,
        };
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(Description = "SqliteTraceStore.AppendAsync (one transaction)")]
    public Task Append()
    {
        var batch = new TraceRecord[Batch];
        for (var i = 0; i < batch.Length; i++)
        {
            batch[i] = _template with { Id = NewId() };
        }

        return _store.AppendAsync(batch, CancellationToken.None);
    }

    private string NewId()
    {
        if (Ids == "random")
        {
            return Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        }

        // Milliseconds and a 12-bit sequence (big-endian, so hex order is time order), then 64 random bits: 32 hex characters.
        Span<byte> id = stackalloc byte[16];
        BinaryPrimitives.WriteInt64BigEndian(id, (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 12) | (++_sequence & 0xFFF));
        RandomNumberGenerator.Fill(id[8..]);
        return Convert.ToHexStringLower(id);
    }
}
