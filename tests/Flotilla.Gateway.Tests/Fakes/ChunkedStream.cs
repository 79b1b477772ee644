namespace Flotilla.Gateway.Tests.Fakes;

/// <summary>
/// A read-only stream that hands out its bytes in the given pieces, at most one piece per read (so a test decides where
/// reads split the data), then either ends or, with <c>hangAtEnd</c>, blocks like an open connection until cancelled.
/// </summary>
internal sealed class ChunkedStream(IReadOnlyList<byte[]> pieces, bool hangAtEnd = false) : Stream
{
    private int _piece;
    private int _offset;

    /// <summary>One byte per read: every line ending, field and value is split across reads.</summary>
    public static ChunkedStream OneBytePerRead(byte[] data) => new(data.Select(b => new[] { b }).ToArray());

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (_piece < pieces.Count && _offset == pieces[_piece].Length)
        {
            _piece++;
            _offset = 0;
        }

        if (_piece == pieces.Count || buffer.IsEmpty)
        {
            return 0;
        }

        var source = pieces[_piece].AsSpan(_offset);
        var count = Math.Min(source.Length, buffer.Length);
        source[..count].CopyTo(buffer);
        _offset += count;
        return count;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var count = Read(buffer.Span);
        if (count == 0 && hangAtEnd && !buffer.IsEmpty)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
