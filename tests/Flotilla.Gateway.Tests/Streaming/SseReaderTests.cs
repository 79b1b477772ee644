using System.IO.Pipelines;
using System.Text;
using Flotilla.Gateway.Streaming;

namespace Flotilla.Gateway.Tests.Streaming;

public sealed class SseReaderTests
{
    [Fact]
    public async Task Events_that_arrived_together_are_returned_without_waiting_for_more_bytes()
    {
        // The upstream sent two events in one go and then paused (or its connection dropped): the second event is already
        // here and must reach the caller now, not when the next bytes come.
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes("data: one\n\nevent: second\ndata: two\n\n"), TestContext.Current.CancellationToken);
        await using var reader = new SseReader(pipe.Reader.AsStream());
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));

        var first = await reader.ReadAsync(timeout.Token);
        var second = await reader.ReadAsync(timeout.Token);

        Encoding.UTF8.GetString(first!.Value.Data.Span).ShouldBe("one");
        second!.Value.Name.ShouldBe("second");
        Encoding.UTF8.GetString(second.Value.Data.Span).ShouldBe("two");
    }

    [Fact]
    public async Task A_line_that_never_ends_is_refused_instead_of_growing_without_bound()
    {
        // 20 MiB of 'data: aaaa…' with no line break: the reader must give up at 16 MiB.
        var endless = new MemoryStream(Encoding.ASCII.GetBytes("data: ").Concat(Enumerable.Repeat((byte)'a', 20 * 1024 * 1024)).ToArray());
        await using var reader = new SseReader(endless);

        await Should.ThrowAsync<InvalidDataException>(async () => await reader.ReadAsync(TestContext.Current.CancellationToken));
    }
}
