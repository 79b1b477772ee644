using System.Net;
using Flotilla.Bench.Upstream;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// The fake OpenAI upstream of the load benchmark (bench/run.sh). Loopback only.
//   --port N            listen on 127.0.0.1:N (default 0: any free port; the bound address is printed)
//   --delay-ms N        wait N ms before answering a chat call (default 0: instant)
//   --chunks N          content chunks in a streamed answer (default 6)
//   --chunk-delay-ms N  wait N ms between streamed chunks (default 0: the whole stream in one write)
if (!UpstreamOptions.TryParse(args, out var options, out var problem))
{
    await Console.Error.WriteLineAsync($"flotilla-bench-upstream: {problem}");
    await Console.Error.WriteLineAsync("usage: Flotilla.Bench.Upstream [--port N] [--delay-ms N] [--chunks N] [--chunk-delay-ms N]");
    return 2;
}

// No configuration reload: its file watcher would see every write under the working directory (the gateway's SQLite
// file, in a naive layout) and spend CPU on the load core.
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = ["--hostBuilder:reloadConfigOnChange=false"],
    ContentRootPath = AppContext.BaseDirectory,
    EnvironmentName = Environments.Production,
});
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    kestrel.Listen(IPAddress.Loopback, options.Port);
});

// An MCP server at /mcp with one read-only tool, for the MCP relay scenario (a tools/call direct and through /mcp).
builder.Services.AddMcpServer(o => o.ServerInfo = new ModelContextProtocol.Protocol.Implementation { Name = "bench-upstream", Version = "1.0.0" })
    .WithHttpTransport()
    .WithListToolsHandler((_, _) => ValueTask.FromResult(new ModelContextProtocol.Protocol.ListToolsResult { Tools = [FakeMcp.Lookup] }))
    .WithCallToolHandler((request, _) => ValueTask.FromResult(FakeMcp.Answer(request.Params!)));

var app = builder.Build();
var upstream = new FakeOpenAI(options);
app.UseWhen(context => !context.Request.Path.StartsWithSegments("/mcp"), branch => branch.Run(upstream.HandleAsync));
app.MapMcp("/mcp");
await app.StartAsync();

var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
Console.WriteLine($"flotilla-bench-upstream listening on {address} (delay {options.DelayMs} ms, {options.Chunks} chunks, chunk delay {options.ChunkDelayMs} ms)");
await app.WaitForShutdownAsync();
return 0;
