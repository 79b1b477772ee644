using System.Globalization;
using System.Text;

namespace Flotilla.Bench.Probe;

/// <summary>Nearest-rank percentiles of microsecond samples, written as a JSON object.</summary>
internal static class Percentiles
{
    public static string Json(List<long> samples)
    {
        if (samples.Count == 0)
        {
            return """{"samples":0}""";
        }

        var sorted = samples.ToArray();
        Array.Sort(sorted);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{{\"samples\":{sorted.Length},\"mean_us\":{sorted.Average():0.0}");
        foreach (var (name, p) in new[] { ("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9) })
        {
            text.Append(CultureInfo.InvariantCulture, $",\"{name}_us\":{At(sorted, p)}");
        }

        text.Append(CultureInfo.InvariantCulture, $",\"max_us\":{sorted[^1]}}}");
        return text.ToString();
    }

    public static long At(long[] sorted, double percentile) =>
        sorted[Math.Clamp((int)Math.Ceiling(percentile / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
}
