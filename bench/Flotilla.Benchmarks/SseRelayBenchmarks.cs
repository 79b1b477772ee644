using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using Flotilla.Gateway.Streaming;

namespace Flotilla.Benchmarks;

/// <summary>
/// The streaming relay: <see cref="SseReader"/> over an upstream body of ~20 chunks, each event written back out as
/// <c>data: …\n\n</c> and flushed, as the gateway's handler does.
/// </summary>
[MemoryDiagnoser]
public class SseRelayBenchmarks
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private byte[] _upstream = null!;
    private PipeWriter _sink = null!;

    [GlobalSetup]
    public void Setup()
    {
        _upstream = BenchData.SseStream(contentChunks: 18);
        _sink = PipeWriter.Create(Stream.Null, new StreamPipeWriterOptions(leaveOpen: true));
    }

    [Benchmark(Description = "SseReader + relay, 21 events")]
    public async Task<int> Relay()
    {
        var events = 0;
        await using var reader = new SseReader(new MemoryStream(_upstream, writable: false));
        while (await reader.ReadAsync(CancellationToken.None) is { } next)
        {
            if (next.Data.Span.SequenceEqual("[DONE]"u8))
            {
                break;
            }

            Write(_sink, next.Data.Span);
            await _sink.FlushAsync();
            events++;
        }

        return events;
    }

    [Benchmark(Description = "SseReader only, 21 events")]
    public async Task<int> ReadOnly()
    {
        var bytes = 0;
        await using var reader = new SseReader(new MemoryStream(_upstream, writable: false));
        while (await reader.ReadAsync(CancellationToken.None) is { } next)
        {
            bytes += next.Data.Length;
        }

        return bytes;
    }

    private static void Write(PipeWriter writer, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(payload.Length + 8);
        DataPrefix.CopyTo(span);
        payload.CopyTo(span[6..]);
        span[6 + payload.Length] = (byte)'\n';
        span[7 + payload.Length] = (byte)'\n';
        writer.Advance(payload.Length + 8);
    }
}
