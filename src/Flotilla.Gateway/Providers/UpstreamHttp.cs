using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Providers;

/// <summary>HTTP plumbing shared by the HTTP providers: the body content, reading bounded bodies, Retry-After.</summary>
internal static class UpstreamHttp
{
    public const int MaxErrorBodyBytes = 64 * 1024;
    public const int MaxAnswerBodyBytes = 64 * 1024 * 1024;

    private static readonly MediaTypeHeaderValue JsonMediaType = new("application/json");

    /// <summary>Makes the HTTP client the gateway uses for every upstream: pooled connections, no proxy, no cookies, no decompression.</summary>
    public static HttpMessageInvoker CreateInvoker() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
        MaxConnectionsPerServer = int.MaxValue,
        EnableMultipleHttp2Connections = true,
    }, disposeHandler: true);

    public static HttpContent Json(BodySegments body) => new SegmentsContent(body);

    public static HttpContent Json(byte[] body)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = JsonMediaType;
        return content;
    }

    public static TimeSpan? RetryAfter(HttpResponseMessage response, TimeProvider time)
    {
        var header = response.Headers.RetryAfter;
        if (header?.Delta is { } delta)
        {
            return delta;
        }

        if (header?.Date is { } date)
        {
            var wait = date - time.GetUtcNow();
            return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
        }

        // OpenAI-compatible servers also send retry-after-ms.
        if (response.Headers.TryGetValues("retry-after-ms", out var values)
            && double.TryParse(values.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
        {
            return TimeSpan.FromMilliseconds(ms);
        }

        return null;
    }

    /// <summary>Reads a body up to <paramref name="limit"/> bytes; null when it is longer.</summary>
    public static async Task<byte[]?> ReadBodyAsync(HttpResponseMessage response, int limit, CancellationToken cancellationToken)
    {
        var declared = response.Content.Headers.ContentLength;
        if (declared > limit)
        {
            return null;
        }

        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        if (declared is { } length)
        {
            // The usual case: one exact allocation, read straight into it.
            var exact = new byte[length];
            await stream.ReadExactlyAsync(exact, cancellationToken);
            return exact;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            var total = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(total), cancellationToken)) > 0)
            {
                total += read;
                if (total > limit)
                {
                    return null;
                }

                if (total == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, total).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
            }

            return buffer.AsSpan(0, total).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static async Task<UpstreamReply> FailureAsync(HttpResponseMessage response, string providerName, TimeProvider time, Func<byte[], string?> readMessage, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        byte[]? body = null;
        try
        {
            body = await ReadBodyAsync(response, MaxErrorBodyBytes, cancellationToken);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            // The status is what matters; a body cut off mid-read adds nothing.
        }

        var detail = body is null ? null : readMessage(body);
        var message = $"provider '{providerName}' answered {status}{(detail is null ? "" : $": {Truncate(detail, 300)}")}";
        return UpstreamReply.Failed(AttemptOutcome.Status, status, message, body, RetryAfter(response, time));
    }

    public static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    private sealed class SegmentsContent : HttpContent
    {
        private readonly BodySegments _body;

        public SegmentsContent(BodySegments body)
        {
            _body = body;
            Headers.ContentType = JsonMediaType;
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(_body.A, cancellationToken);
            if (!_body.B.IsEmpty) await stream.WriteAsync(_body.B, cancellationToken);
            if (!_body.C.IsEmpty) await stream.WriteAsync(_body.C, cancellationToken);
            if (!_body.D.IsEmpty) await stream.WriteAsync(_body.D, cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }
}
