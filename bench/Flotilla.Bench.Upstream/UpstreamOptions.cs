using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Flotilla.Bench.Upstream;

/// <summary>How the fake upstream behaves. Every delay defaults to zero (instant).</summary>
internal sealed record UpstreamOptions(int Port, int DelayMs, int Chunks, int ChunkDelayMs)
{
    public static bool TryParse(string[] args, [NotNullWhen(true)] out UpstreamOptions? options, [NotNullWhen(false)] out string? problem)
    {
        int port = 0, delay = 0, chunks = 6, chunkDelay = 0;
        options = null;
        for (var i = 0; i < args.Length; i++)
        {
            if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                problem = $"'{args[i]}' needs a non-negative integer";
                return false;
            }

            switch (args[i])
            {
                case "--port": port = value; break;
                case "--delay-ms": delay = value; break;
                case "--chunks": chunks = Math.Max(1, value); break;
                case "--chunk-delay-ms": chunkDelay = value; break;
                default:
                    problem = $"unknown option '{args[i]}'";
                    return false;
            }

            i++;
        }

        options = new UpstreamOptions(port, delay, chunks, chunkDelay);
        problem = null;
        return true;
    }
}
