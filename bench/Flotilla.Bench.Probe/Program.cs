using Flotilla.Bench.Probe;

// Streaming probes for bench/run.sh. Each prints one JSON object on stdout; figures are microseconds unless named otherwise.
//   ttft    --direct URL --direct-key KEY --gateway URL --gateway-key KEY --body FILE [--samples N] [--warmup N]
//           time from sending a streaming request to the first `data:` byte, direct and through the gateway, interleaved
//   latency --direct URL --direct-key KEY --gateway URL --gateway-key KEY --body FILE [--samples N] [--warmup N]
//           non-streaming calls one at a time, direct and through the gateway, interleaved: time to the whole answer
//   mcp     --direct URL --gateway URL --gateway-key KEY --direct-tool NAME --gateway-tool NAME [--samples N] [--warmup N]
//           MCP tools/call one at a time with the MCP SDK client, direct and through the gateway's /mcp, interleaved
//   streams --url URL --key KEY --body FILE [--concurrency N] [--duration-s N] [--ramp-ms N] [--stall-ms N]
//           N streams open at once for a while: completed streams, errors, gaps between chunks, stalls
try
{
    var options = ProbeOptions.Parse(args);
    return args.FirstOrDefault() switch
    {
        "ttft" => await TtftProbe.RunAsync(options),
        "latency" => await LatencyProbe.RunAsync(options),
        "streams" => await StreamsProbe.RunAsync(options),
        "mcp" => await McpProbe.RunAsync(options),
        _ => Usage(),
    };
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync($"flotilla-bench-probe: {e.Message}");
    return Usage();
}

static int Usage()
{
    Console.Error.WriteLine("usage: Flotilla.Bench.Probe ttft --direct URL --direct-key KEY --gateway URL --gateway-key KEY --body FILE [--samples N] [--warmup N]");
    Console.Error.WriteLine("       Flotilla.Bench.Probe latency --direct URL --direct-key KEY --gateway URL --gateway-key KEY --body FILE [--samples N] [--warmup N]");
    Console.Error.WriteLine("       Flotilla.Bench.Probe mcp --direct URL --gateway URL --gateway-key KEY --direct-tool NAME --gateway-tool NAME [--samples N] [--warmup N]");
    Console.Error.WriteLine("       Flotilla.Bench.Probe streams --url URL --key KEY --body FILE [--concurrency N] [--duration-s N] [--ramp-ms N] [--stall-ms N]");
    return 2;
}
