using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;

namespace Flotilla.Bench.Probe;

/// <summary>
/// Non-streaming calls one at a time (concurrency 1), direct and through the gateway, interleaved like
/// <see cref="TtftProbe"/>: the time from sending a request to having its whole answer, per call. A cross-check of wrk's
/// own figures at <c>-c 1</c>.
/// </summary>
internal static class LatencyProbe
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var body = await File.ReadAllBytesAsync(options.Required("body"));
        using var direct = new Client(new Uri(options.Required("direct")), options.Required("direct-key"), body);
        using var gateway = new Client(new Uri(options.Required("gateway")), options.Required("gateway-key"), body);
        var samples = options.Int("samples", 10_000);
        var warmup = options.Int("warmup", 1000);
        List<long> directUs = new(samples), gatewayUs = new(samples);
        var errors = 0;
        string? error = null;
        for (var i = 0; i < warmup + samples; i++)
        {
            var (first, second) = i % 2 == 0 ? (direct, gateway) : (gateway, direct);
            foreach (var client in new[] { first, second })
            {
                var (us, failure) = await client.CallAsync();
                if (failure is not null)
                {
                    errors++;
                    error ??= failure;
                }
                else if (i >= warmup)
                {
                    (client == direct ? directUs : gatewayUs).Add(us);
                }
            }
        }

        Console.WriteLine($$"""{"direct":{{Percentiles.Json(directUs)}},"gateway":{{Percentiles.Json(gatewayUs)}},"errors":{{errors}},"first_error":{{TtftProbe.Quote(error)}}}""");
        return errors == 0 ? 0 : 1;
    }

    private sealed class Client(Uri url, string key, byte[] body) : IDisposable
    {
        private static readonly MediaTypeHeaderValue Json = new("application/json");
        private readonly AuthenticationHeaderValue _authorization = new("Bearer", key);
        private readonly byte[] _buffer = new byte[64 * 1024];
        private readonly HttpClient _http = new(new SocketsHttpHandler
        {
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        });

        public async Task<(long Micros, string? Error)> CallAsync()
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = Json;
            request.Headers.Authorization = _authorization;
            var start = Stopwatch.GetTimestamp();
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var stream = await response.Content.ReadAsStreamAsync();
            while (await stream.ReadAsync(_buffer) > 0)
            {
            }

            var micros = StreamClient.Micros(Stopwatch.GetTimestamp() - start);
            return response.StatusCode == HttpStatusCode.OK ? (micros, null) : (micros, $"HTTP {(int)response.StatusCode}");
        }

        public void Dispose() => _http.Dispose();
    }
}
