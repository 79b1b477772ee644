namespace Flotilla.Bench.Probe;

/// <summary>
/// Time to the first <c>data:</c> byte (and to the first content token) of a streamed answer, direct to the upstream and
/// through the gateway, one request
/// at a time on a kept-alive connection each. Samples alternate between the two (and which goes first), so drift in the
/// machine's state affects both alike.
/// </summary>
internal static class TtftProbe
{
    public static async Task<int> RunAsync(ProbeOptions options)
    {
        var body = await File.ReadAllBytesAsync(options.Required("body"));
        using var direct = new StreamClient(new Uri(options.Required("direct")), options.Required("direct-key"), body);
        using var gateway = new StreamClient(new Uri(options.Required("gateway")), options.Required("gateway-key"), body);
        var samples = options.Int("samples", 2000);
        var warmup = options.Int("warmup", 500);
        List<long> directTtft = new(samples), gatewayTtft = new(samples), directToken = new(samples), gatewayToken = new(samples);
        string? error = null;
        var errors = 0;
        for (var i = 0; i < warmup + samples; i++)
        {
            var (first, second) = i % 2 == 0 ? (direct, gateway) : (gateway, direct);
            foreach (var client in new[] { first, second })
            {
                var outcome = await client.RunAsync(null, CancellationToken.None);
                if (!outcome.Ok)
                {
                    errors++;
                    error ??= outcome.Error;
                    continue;
                }

                if (i >= warmup)
                {
                    (client == direct ? directTtft : gatewayTtft).Add(outcome.FirstByteUs);
                    (client == direct ? directToken : gatewayToken).Add(outcome.FirstTokenUs);
                }
            }
        }

        Console.WriteLine(
            $$"""{"direct":{{Percentiles.Json(directTtft)}},"gateway":{{Percentiles.Json(gatewayTtft)}},"direct_first_token":{{Percentiles.Json(directToken)}},"gateway_first_token":{{Percentiles.Json(gatewayToken)}},"errors":{{errors}},"first_error":{{Quote(error)}}}""");
        return errors == 0 ? 0 : 1;
    }

    public static string Quote(string? text) => text is null ? "null" : System.Text.Json.JsonSerializer.Serialize(text);
}
