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
}
