using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace Flotilla.Bench.Probe;

/// <summary>Sends a streaming chat request and reads the answer as it arrives, timing the first byte and the gaps after it.</summary>
internal sealed class StreamClient(Uri url, string key, byte[] body) : IDisposable
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private static readonly byte[] Done = "data: [DONE]"u8.ToArray();
    private static readonly byte[] Content = "\"content\":\""u8.ToArray();

    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        MaxConnectionsPerServer = int.MaxValue,
    })
    {
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>One stream. <paramref name="gaps"/>, when given, receives the time between successive reads, in µs.</summary>
    public async Task<StreamOutcome> RunAsync(List<long>? gaps, CancellationToken cancellationToken)
    {
        var buffer = new byte[(16 * 1024) + 32];
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = Json;
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var start = Stopwatch.GetTimestamp();
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            return StreamOutcome.Failed($"HTTP {(int)response.StatusCode}: {text[..Math.Min(200, text.Length)]}");
        }

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        long firstByte = -1, firstToken = -1;
        var last = start;
        var tail = new byte[32];
        var tailLength = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer.AsMemory(tail.Length), cancellationToken)) > 0)
        {
            var now = Stopwatch.GetTimestamp();
            var chunk = buffer.AsSpan(tail.Length, read);
            if (firstByte < 0)
            {
                if (!chunk.TrimStart(" \r\n"u8).StartsWith("data:"u8))
                {
                    return StreamOutcome.Failed("the first bytes are not a data: event");
                }

                firstByte = now;
            }
            else
            {
                gaps?.Add(Micros(now - last));
            }

            // The previous read's last bytes go in front of this one, so a marker split across two reads is still found.
            tail.AsSpan(0, tailLength).CopyTo(buffer.AsSpan(tail.Length - tailLength));
            if (firstToken < 0 && HasToken(buffer.AsSpan(tail.Length - tailLength, tailLength + read)))
            {
                firstToken = now;
            }

            last = now;
            KeepTail(tail, ref tailLength, chunk);
        }

        return tail.AsSpan(0, tailLength).IndexOf(Done) >= 0
            ? new StreamOutcome(true, Micros(firstByte - start), firstToken < 0 ? -1 : Micros(firstToken - start), Micros(last - start), null)
            : StreamOutcome.Failed("the stream ended without data: [DONE]");
    }

    /// <summary>Whether the bytes hold a non-empty <c>"content":"…"</c>: the first token, not the role chunk before it.</summary>
    private static bool HasToken(ReadOnlySpan<byte> bytes)
    {
        int at;
        while ((at = bytes.IndexOf(Content)) >= 0)
        {
            bytes = bytes[(at + Content.Length)..];
            if (!bytes.IsEmpty && bytes[0] != (byte)'"')
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Keeps the last bytes of the stream: a complete stream ends with <c>data: [DONE]</c>.</summary>
    private static void KeepTail(byte[] tail, ref int length, ReadOnlySpan<byte> chunk)
    {
        if (chunk.Length >= tail.Length)
        {
            chunk[^tail.Length..].CopyTo(tail);
            length = tail.Length;
            return;
        }

        var keep = Math.Min(length, tail.Length - chunk.Length);
        tail.AsSpan(length - keep, keep).CopyTo(tail);
        chunk.CopyTo(tail.AsSpan(keep));
        length = keep + chunk.Length;
    }

    public static long Micros(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    public void Dispose() => _http.Dispose();
}

/// <summary>One stream: time to the first <c>data:</c> byte, to the first content token (-1 if none came), to the end.</summary>
internal readonly record struct StreamOutcome(bool Ok, long FirstByteUs, long FirstTokenUs, long TotalUs, string? Error)
{
    public static StreamOutcome Failed(string error) => new(false, 0, 0, 0, error);
}
