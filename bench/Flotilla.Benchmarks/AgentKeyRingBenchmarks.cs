using BenchmarkDotNet.Attributes;
using Flotilla.Storage.Keys;

namespace Flotilla.Benchmarks;

/// <summary>Authenticating a presented agent key (SHA-256 of the key, then a dictionary lookup), among 1,000 issued keys.</summary>
[MemoryDiagnoser]
public class AgentKeyRingBenchmarks
{
    private AgentKeyRing _ring = null!;
    private string _known = null!;
    private string _unknown = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _ring = new AgentKeyRing(new MemoryKeyStore(), TimeProvider.System);
        for (var i = 0; i < 1000; i++)
        {
            var (key, _) = await _ring.IssueAsync($"agent-{i % 50}", CancellationToken.None);
            _known = key;
        }

        _unknown = AgentKeyRing.KeyPrefix + new string('x', 32);
    }

    [Benchmark(Description = "TryResolve: known key")]
    public bool Known() => _ring.TryResolve(_known, out _);

    [Benchmark(Description = "TryResolve: unknown key")]
    public bool Unknown() => _ring.TryResolve(_unknown, out _);

    [Benchmark(Description = "TryResolve: not a key")]
    public bool NotAKey() => _ring.TryResolve("sk-not-a-flotilla-key", out _);
}

/// <summary>An agent key store in memory.</summary>
internal sealed class MemoryKeyStore : IAgentKeyStore
{
    private readonly List<AgentKeyRecord> _keys = [];

    public Task AddAsync(AgentKeyRecord key, CancellationToken cancellationToken)
    {
        lock (_keys)
        {
            _keys.Add(key);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AgentKeyRecord>> ListAsync(CancellationToken cancellationToken)
    {
        lock (_keys)
        {
            return Task.FromResult<IReadOnlyList<AgentKeyRecord>>([.. _keys]);
        }
    }

    public Task<bool> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken) => Task.FromResult(false);
}
