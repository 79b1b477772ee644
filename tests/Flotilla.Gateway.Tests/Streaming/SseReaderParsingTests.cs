using System.Text;
using Flotilla.Gateway.Streaming;
using Flotilla.Gateway.Tests.Fakes;

namespace Flotilla.Gateway.Tests.Streaming;

/// <summary>How <see cref="SseReader"/> splits a body into events, read whole and read one byte at a time.</summary>
public sealed class SseReaderParsingTests
{
    public static TheoryData<string, bool> LineEndings => new()
    {
        { "\n", false }, { "\n", true },
        { "\r\n", false }, { "\r\n", true },
        { "\r", false }, { "\r", true },
    };

    public static TheoryData<bool> Chunking => new() { false, true };

    private static Stream Body(string text, bool oneBytePerRead)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return oneBytePerRead ? ChunkedStream.OneBytePerRead(bytes) : new MemoryStream(bytes);
    }

    private static async Task<List<(string? Name, string Data)>> ReadAll(string text, bool oneBytePerRead)
    {
        var events = new List<(string? Name, string Data)>();
        await using var reader = new SseReader(Body(text, oneBytePerRead));
        while (await reader.ReadAsync(TestContext.Current.CancellationToken) is { } sseEvent)
        {
            events.Add((sseEvent.Name, Encoding.UTF8.GetString(sseEvent.Data.Span)));
        }

        return events;
    }

    [Theory]
    [MemberData(nameof(LineEndings))]
    public async Task Every_line_ending_separates_fields_and_events(string eol, bool oneBytePerRead)
    {
        var text = string.Join(eol, "event: delta", "data: {\"a\":1}", "", "data: second", "data: line", "", ": ping", "", "data: [DONE]", "", "");

        var events = await ReadAll(text, oneBytePerRead);

        events.ShouldBe([("delta", "{\"a\":1}"), (null, "second\nline"), (null, "[DONE]")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task Data_lines_of_one_event_are_joined_with_newlines(bool oneBytePerRead)
    {
        var events = await ReadAll("data: {\"choices\":\ndata: []}\ndata:\ndata: end\n\n", oneBytePerRead);

        events.ShouldBe([(null, "{\"choices\":\n[]}\n\nend")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task An_event_name_applies_to_its_own_event_only(bool oneBytePerRead)
    {
        var events = await ReadAll("event: message_start\ndata: 1\n\ndata: 2\n\nevent: message_stop\ndata: 3\n\n", oneBytePerRead);

        events.ShouldBe([("message_start", "1"), (null, "2"), ("message_stop", "3")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task Comments_and_unknown_fields_are_ignored(bool oneBytePerRead)
    {
        var events = await ReadAll(": OPENROUTER PROCESSING\n\n:\n\nid: 7\nretry: 1000\ndata: x\n: between data lines\ndata: y\n\n", oneBytePerRead);

        events.ShouldBe([(null, "x\ny")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task An_event_name_without_data_is_dropped_at_the_blank_line(bool oneBytePerRead)
    {
        var events = await ReadAll("event: ping\n\ndata: x\n\n", oneBytePerRead);

        events.ShouldBe([(null, "x")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task Only_one_space_after_the_colon_is_removed(bool oneBytePerRead)
    {
        var events = await ReadAll("data:no-space\n\ndata:  two spaces\n\ndata\n\n", oneBytePerRead);

        events.ShouldBe([(null, "no-space"), (null, " two spaces"), (null, "")]);
    }

    [Theory]
    [InlineData("data: one\n\ndata: two\n", false)]
    [InlineData("data: one\n\ndata: two\n", true)]
    [InlineData("data: one\n\ndata: two", false)]
    [InlineData("data: one\n\ndata: two", true)]
    [InlineData("data: one\r\n\r\ndata: two\r\n", true)]
    public async Task A_last_event_without_its_blank_line_is_not_returned(string text, bool oneBytePerRead)
    {
        var events = await ReadAll(text, oneBytePerRead);

        events.ShouldBe([(null, "one")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task A_body_that_ends_in_a_lone_carriage_return_still_ends_its_last_event(bool oneBytePerRead)
    {
        var events = await ReadAll("data: one\r\rdata: two\r\r", oneBytePerRead);

        events.ShouldBe([(null, "one"), (null, "two")]);
    }

    [Theory]
    [MemberData(nameof(Chunking))]
    public async Task Done_is_returned_as_data(bool oneBytePerRead)
    {
        var events = await ReadAll("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", oneBytePerRead);

        events.Select(e => e.Data).ShouldBe(["{\"choices\":[]}", "[DONE]"]);
    }

    [Fact]
    public async Task An_empty_body_has_no_events()
    {
        (await ReadAll("", oneBytePerRead: false)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Utf8_split_across_reads_is_kept_whole()
    {
        var events = await ReadAll("data: héllo ☀ 🚀\n\n", oneBytePerRead: true);

        events.ShouldBe([(null, "héllo ☀ 🚀")]);
    }

    [Fact]
    public async Task A_second_event_already_received_is_returned_without_reading_again()
    {
        // Both events arrive in one read and the connection stays open: the second must not wait for more bytes.
        var stream = new ChunkedStream([Encoding.UTF8.GetBytes("data: one\n\ndata: two\n\n")], hangAtEnd: true);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        await using var reader = new SseReader(stream);

        var first = await reader.ReadAsync(stop.Token);
        var pending = reader.ReadAsync(stop.Token).AsTask();
        var completed = pending.IsCompleted;
        await stop.CancelAsync();

        Encoding.UTF8.GetString(first!.Value.Data.Span).ShouldBe("one");
        completed.ShouldBeTrue();
        Encoding.UTF8.GetString((await pending)!.Value.Data.Span).ShouldBe("two");
    }
}
