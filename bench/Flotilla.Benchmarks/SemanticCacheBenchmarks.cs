using BenchmarkDotNet.Attributes;
using Flotilla.Fleet;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Simulated;

namespace Flotilla.Benchmarks;

/// <summary>A semantic-cache lookup in one namespace holding <see cref="Entries"/> answers (a miss scans them all).</summary>
[MemoryDiagnoser]
public class SemanticCacheBenchmarks
{
    private ResponseCache _cache = null!;
    private float[] _miss = null!;
    private float[] _hit = null!;

    [Params(10_000, 100_000)]
    public int Entries { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var config = new CachingConfig(CacheType.Semantic, 0.9, CacheNamespace.Agent, TimeSpan.FromHours(1), null, Entries, false, default);
        _cache = new ResponseCache(config, TimeProvider.System);
        var answer = new CachedAnswer([], "m", new TokenUsage(1, 1), DateTimeOffset.UtcNow);
        for (var i = 0; i < Entries; i++)
        {
            var vector = ResponseCache.Project(SimulatedProvider.Embed($"question {i} about deploy {i % 97} and service {i % 13}", ResponseCache.IndexDimensions));
            _cache.Put("agent:a", (ulong)i, vector, answer);
        }

        _hit = ResponseCache.Project(SimulatedProvider.Embed("question 4242 about deploy 71 and service 4", ResponseCache.IndexDimensions));
        _miss = ResponseCache.Project(SimulatedProvider.Embed("an unrelated sentence about lunch", ResponseCache.IndexDimensions));
    }

    [Benchmark]
    public bool Miss() => _cache.GetSimilar("agent:a", _miss) is not null;

    [Benchmark]
    public bool Hit() => _cache.GetSimilar("agent:a", _hit) is not null;
}
