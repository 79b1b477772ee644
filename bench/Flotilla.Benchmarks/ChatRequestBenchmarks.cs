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
    private byte[] _history = null!;

    [GlobalSetup]
    public void Setup()
    {
        _body = BenchData.ChatBody;
        _request = ChatRequest.ParseChat(_body);
        _streamRequest = ChatRequest.ParseChat(BenchData.StreamBody);
        // A loop's 60-turn history (~70 KB), as it is resent on every step.
        var turns = Enumerable.Range(0, 60).Select(t =>
            $$"""{"role":"{{(t % 2 == 0 ? "user" : "assistant")}}","content":"step {{t}}: {{string.Concat(Enumerable.Repeat("the failing test reads the fixture before the migration runs; ", 18))}}"}""");
        _history = System.Text.Encoding.UTF8.GetBytes($$"""{"model":"bench","messages":[{{string.Join(",", turns)}}]}""");
    }

    [Benchmark(Description = "ParseChat (1 KB body)")]
    public object ParseChat() => ChatRequest.ParseChat(_body);

    /// <summary>What rate limits and budgets pay per call: the scan, a JSON DOM of the body, and tiktoken over its texts.</summary>
    [Benchmark(Description = "ParseChat + TokenEstimator.EstimateInput")]
    public long EstimateInput() => TokenEstimator.EstimateInput(ChatRequest.ParseChat(_body));

    /// <summary>The same history every call: every message's count is remembered after the first.</summary>
    [Benchmark(Description = "EstimateInput, 60-turn history (70 KB), counts remembered")]
    public long EstimateHistory() => TokenEstimator.EstimateInput(ChatRequest.ParseChat(_history));

    /// <summary>The validating scan alone, on the 60-turn history.</summary>
    [Benchmark(Description = "ParseChat, 60-turn history (70 KB)")]
    public object ParseHistory() => ChatRequest.ParseChat(_history);

    /// <summary>The scan and the JSON DOM the policies share: the body is tokenized twice.</summary>
    [Benchmark(Description = "ParseChat + Document, 60-turn history")]
    public int ParseHistoryDocument() => ChatRequest.ParseChat(_history).Document.GetArrayLength("messages");

    /// <summary>What budgets and rate limits pay per call now: the byte bound over the DOM.</summary>
    [Benchmark(Description = "ParseChat + TokenEstimator.UpperBound, 60-turn history")]
    public long BoundHistory() => TokenEstimator.UpperBound(ChatRequest.ParseChat(_history));

    /// <summary>What the estimate cost before counts were remembered: the tokenizer over every message.</summary>
    [Benchmark(Description = "tokenizer over the 60-turn history, nothing remembered")]
    public long CountHistoryFresh()
    {
        long tokens = 0;
        foreach (var message in ChatRequest.ParseChat(_history).Document.GetProperty("messages").EnumerateArray())
        {
            tokens += TokenEstimator.CountFresh(message.GetProperty("content").GetString()!);
        }

        return tokens;
    }

    [Benchmark(Description = "RewriteForUpstream (model swap)")]
    public int RewriteForUpstream() => _request.RewriteForUpstream("gpt-4o-mini", forceUsage: false).Length;

    [Benchmark(Description = "RewriteForUpstream (stream, add include_usage)")]
    public int RewriteForUpstreamStream() => _streamRequest.RewriteForUpstream("gpt-4o-mini", forceUsage: true).Length;
}

internal static class JsonElementLength
{
    public static int GetArrayLength(this System.Text.Json.JsonElement root, string property) => root.GetProperty(property).GetArrayLength();
}
