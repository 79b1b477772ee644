using BenchmarkDotNet.Attributes;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Benchmarks;

/// <summary>The request scan every call pays, and the model rewrite an OpenAI-compatible upstream gets.</summary>
[MemoryDiagnoser]
public class ChatRequestBenchmarks
{
    private byte[] _body = null!;
    private ChatRequest _request = null!;
    private ChatRequest _streamRequest = null!;

    [GlobalSetup]
    public void Setup()
    {
        _body = BenchData.ChatBody;
        _request = ChatRequest.ParseChat(_body);
        _streamRequest = ChatRequest.ParseChat(BenchData.StreamBody);
    }

    [Benchmark(Description = "ParseChat (1 KB body)")]
    public object ParseChat() => ChatRequest.ParseChat(_body);

    /// <summary>What rate limits and budgets pay per call: the scan, a JSON DOM of the body, and tiktoken over its texts.</summary>
    [Benchmark(Description = "ParseChat + TokenEstimator.EstimateInput")]
    public long EstimateInput() => TokenEstimator.EstimateInput(ChatRequest.ParseChat(_body));

    [Benchmark(Description = "RewriteForUpstream (model swap)")]
    public int RewriteForUpstream() => _request.RewriteForUpstream("gpt-4o-mini", forceUsage: false).Length;

    [Benchmark(Description = "RewriteForUpstream (stream, add include_usage)")]
    public int RewriteForUpstreamStream() => _streamRequest.RewriteForUpstream("gpt-4o-mini", forceUsage: true).Length;
}
