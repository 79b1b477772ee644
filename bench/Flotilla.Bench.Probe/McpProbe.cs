using System.Diagnostics;
using ModelContextProtocol.Client;

namespace Flotilla.Bench.Probe;

/// <summary>
/// MCP <c>tools/call</c> one at a time with the MCP C# SDK client, direct to the fake upstream and through the gateway's
/// <c>/mcp</c>, interleaved: the time from sending a call to having its result. Both clients keep their session open, so
/// only the calls are timed.
/// </summary>
internal static class McpProbe
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        await using var direct = await ConnectAsync(new Uri(options.Required("direct")), null);
        await using var gateway = await ConnectAsync(new Uri(options.Required("gateway")), options.Required("gateway-key"));
        var directTool = options.Required("direct-tool");
        var gatewayTool = options.Required("gateway-tool");
        var samples = options.Int("samples", 2000);
        var warmup = options.Int("warmup", 500);
        var arguments = new Dictionary<string, object?> { ["key"] = "bench" };
        List<long> directUs = new(samples), gatewayUs = new(samples);
        var errors = 0;
        string? error = null;
        for (var i = 0; i < warmup + samples; i++)
        {
            var order = i % 2 == 0 ? new[] { (direct, directTool, directUs), (gateway, gatewayTool, gatewayUs) } : [(gateway, gatewayTool, gatewayUs), (direct, directTool, directUs)];
            foreach (var (client, tool, into) in order)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    var result = await client.CallToolAsync(tool, arguments);
                    var micros = StreamClient.Micros(Stopwatch.GetTimestamp() - start);
                    if (result.IsError == true)
                    {
                        errors++;
                        error ??= "the tool answered an error result";
                    }
                    else if (i >= warmup)
                    {
                        into.Add(micros);
                    }
                }
                catch (Exception e)
                {
                    errors++;
                    error ??= e.Message;
                }
            }
        }

        Console.WriteLine($$"""{"direct":{{Percentiles.Json(directUs)}},"gateway":{{Percentiles.Json(gatewayUs)}},"errors":{{errors}},"first_error":{{TtftProbe.Quote(error)}}}""");
        return errors == 0 ? 0 : 1;
    }

    private static Task<McpClient> ConnectAsync(Uri url, string? key) => McpClient.CreateAsync(new HttpClientTransport(new HttpClientTransportOptions
    {
        Endpoint = url,
        TransportMode = HttpTransportMode.StreamableHttp,
        AdditionalHeaders = key is null ? null : new Dictionary<string, string> { ["Authorization"] = "Bearer " + key },
    }));
}
