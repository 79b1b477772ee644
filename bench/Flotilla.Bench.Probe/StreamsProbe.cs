using System.Diagnostics;

namespace Flotilla.Bench.Probe;

/// <summary>
/// Keeps <c>--concurrency</c> streams open at once for <c>--duration-s</c>: each worker opens a stream, reads it to
/// <c>[DONE]</c>, and opens the next. A stall is a gap between two reads of one stream longer than <c>--stall-ms</c>.
/// </summary>
internal static class StreamsProbe
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var body = await File.ReadAllBytesAsync(options.Required("body"));
        var concurrency = options.Int("concurrency", 1000);
        var duration = TimeSpan.FromSeconds(options.Int("duration-s", 10));
        var ramp = TimeSpan.FromMilliseconds(options.Int("ramp-ms", 1000));
        var stallUs = options.Int("stall-ms", 500) * 1000L;
        using var client = new StreamClient(new Uri(options.Required("url")), options.Required("key"), body);
        var started = Stopwatch.GetTimestamp();
        var inFlight = 0;
        var peak = 0;
        var workers = Enumerable.Range(0, concurrency).Select(async worker =>
        {
            var result = new WorkerResult();
            await Task.Delay(ramp * worker / concurrency);
            while (Stopwatch.GetElapsedTime(started) < duration + ramp)
            {
                var now = Interlocked.Increment(ref inFlight);
                InterlockedMax(ref peak, now);
                try
                {
                    var outcome = await client.RunAsync(result.Gaps, CancellationToken.None);
                    if (outcome.Ok)
                    {
                        result.Completed++;
                        result.FirstByte.Add(outcome.FirstByteUs);
                        result.FirstToken.Add(outcome.FirstTokenUs);
                    }
                    else
                    {
                        result.Errors++;
                        result.Error ??= outcome.Error;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    result.Errors++;
                    result.Error ??= e.Message;
                }
                finally
                {
                    Interlocked.Decrement(ref inFlight);
                }
            }

            return result;
        }).ToArray();
        var results = await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var gaps = results.SelectMany(r => r.Gaps).ToList();
        var completed = results.Sum(r => r.Completed);
        var errors = results.Sum(r => r.Errors);
        Console.WriteLine(
            $$"""{"concurrency":{{concurrency}},"peak_in_flight":{{peak}},"elapsed_s":{{elapsed:0.00}},"completed":{{completed}},"errors":{{errors}},"first_error":{{TtftProbe.Quote(results.Select(r => r.Error).FirstOrDefault(e => e is not null))}},"stall_threshold_ms":{{stallUs / 1000}},"stalls":{{gaps.Count(g => g > stallUs)}},"chunk_gap":{{Percentiles.Json(gaps)}},"first_byte":{{Percentiles.Json(results.SelectMany(r => r.FirstByte).ToList())}},"first_token":{{Percentiles.Json(results.SelectMany(r => r.FirstToken).ToList())}}}""");
        return errors == 0 ? 0 : 1;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    private sealed class WorkerResult
    {
        public List<long> Gaps { get; } = [];

        public List<long> FirstByte { get; } = [];

        public List<long> FirstToken { get; } = [];

        public int Completed { get; set; }

        public int Errors { get; set; }

        public string? Error { get; set; }
    }
}
