using System.Buffers;
using System.IO.Pipelines;

namespace Flotilla.Gateway.Streaming;

/// <summary>One server-sent event: its <c>event:</c> name (if any) and its <c>data:</c> lines joined by newlines.</summary>
internal readonly record struct SseEvent(string? Name, ReadOnlyMemory<byte> Data);

/// <summary>
/// Reads server-sent events from an upstream body (<see href="https://html.spec.whatwg.org/multipage/server-sent-events.html"/>):
/// lines end in LF, CRLF or CR; a blank line ends an event; comments (<c>:</c>) are ignored.
/// </summary>
internal sealed class SseReader(Stream stream) : IAsyncDisposable
{
    private const int MaxEventBytes = 16 * 1024 * 1024;
    private readonly PipeReader _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024, leaveOpen: false));
    private readonly ArrayBufferWriter<byte> _data = new(1024);
    private string? _name;
    private bool _hasData;

    /// <summary>The next event, or null at the end of the body. An event cut off by the end of the body is not returned.</summary>
    public async ValueTask<SseEvent?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (TryReadEvent(ref buffer, result.IsCompleted, out var sseEvent))
            {
                // Examined only up to the end of this event: events already buffered behind it come out on the next read
                // without waiting for more bytes (which may never come, when the upstream pauses or the connection drops).
                _reader.AdvanceTo(buffer.Start);
                return sseEvent;
            }

            _reader.AdvanceTo(buffer.Start, buffer.End);

            if (result.IsCompleted)
            {
                return null;
            }

            // Both the event so far and an unfinished line count: an upstream that never ends a line must not grow the buffer forever.
            if (_data.WrittenCount + buffer.Length > MaxEventBytes)
            {
                throw new InvalidDataException("An upstream event exceeded 16 MiB.");
            }
        }
    }

    private bool TryReadEvent(ref ReadOnlySequence<byte> buffer, bool isFinal, out SseEvent sseEvent)
    {
        sseEvent = default;
        while (TryReadLine(ref buffer, isFinal, out var line))
        {
            if (line.Length == 0)
            {
                if (!_hasData)
                {
                    _name = null;
                    continue;
                }

                sseEvent = new SseEvent(_name, _data.WrittenMemory.ToArray());
                _data.ResetWrittenCount();
                _hasData = false;
                _name = null;
                return true;
            }

            ProcessLine(line);
        }

        return false;
    }

    private void ProcessLine(ReadOnlySpan<byte> line)
    {
        if (line[0] == (byte)':')
        {
            return;
        }

        var colon = line.IndexOf((byte)':');
        var field = colon < 0 ? line : line[..colon];
        var value = colon < 0 ? [] : line[(colon + 1)..];
        if (value.Length > 0 && value[0] == (byte)' ')
        {
            value = value[1..];
        }

        if (field.SequenceEqual("data"u8))
        {
            if (_hasData)
            {
                _data.Write("\n"u8);
            }

            _data.Write(value);
            _hasData = true;
        }
        else if (field.SequenceEqual("event"u8))
        {
            _name = System.Text.Encoding.UTF8.GetString(value);
        }
    }

    private static bool TryReadLine(ref ReadOnlySequence<byte> buffer, bool isFinal, out ReadOnlySpan<byte> line)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryAdvanceToAny("\r\n"u8, advancePastDelimiter: false))
        {
            line = default;
            return false;
        }

        var end = reader.Position;
        var lineSequence = buffer.Slice(0, end);
        reader.TryRead(out var delimiter);
        if (delimiter == (byte)'\r')
        {
            if (reader.End && !isFinal)
            {
                // Need the next byte to know whether this is CRLF (at the end of the body there is none: a lone CR ends the line).
                line = default;
                return false;
            }

            if (reader.TryPeek(out var next) && next == (byte)'\n')
            {
                reader.Advance(1);
            }
        }

        line = lineSequence.IsSingleSegment ? lineSequence.FirstSpan : lineSequence.ToArray();
        buffer = buffer.Slice(reader.Position);
        return true;
    }

    public ValueTask DisposeAsync() => _reader.CompleteAsync();
}
