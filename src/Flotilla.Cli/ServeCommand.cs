using System.CommandLine;
using System.Runtime.InteropServices;
using Flotilla.Fleet.Loading;
using Flotilla.Server.Hosting;

namespace Flotilla.Cli;

/// <summary><c>flotilla serve</c>: load and validate the fleet, then run the server until Ctrl+C.</summary>
internal static class ServeCommand
{
    public const string QuickstartFleet = "examples/quickstart/fleet.yaml";

    public static Command Create()
    {
        var fleet = new Option<string?>("--fleet") { Description = "Fleet file (default: ./fleet.yaml if present, else examples/quickstart/fleet.yaml)" };
        var urls = new Option<string>("--urls") { Description = "Listen address", DefaultValueFactory = _ => "http://127.0.0.1:8080" };
        var data = new Option<string>("--data") { Description = "Data directory (SQLite, generated admin token)", DefaultValueFactory = _ => ".flotilla" };
        var verbose = new Option<bool>("--verbose") { Description = "Log at Information level" };
        var command = new Command("serve", "Run the gateway, admin API and health endpoints") { fleet, urls, data, verbose };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var path = parse.GetValue(fleet) ?? (File.Exists("fleet.yaml") ? "fleet.yaml" : QuickstartFleet);
            var loaded = FleetLoader.LoadFile(path);
            if (!loaded.IsValid)
            {
                foreach (var error in loaded.Errors)
                {
                    await Console.Error.WriteLineAsync(error.ToString());
                }

                await Console.Error.WriteLineAsync($"{path}: {loaded.Errors.Count} error(s); not starting. Fix them (./flotilla validate {path}) and retry.");
                return 1;
            }

            FlotillaServer server;
            try
            {
                server = await FlotillaServer.StartAsync(new FlotillaServerOptions
                {
                    Fleet = loaded.Fleet!,
                    FleetYaml = await File.ReadAllTextAsync(path, cancellationToken),
                    FleetPath = path,
                    Urls = parse.GetValue(urls)!,
                    DataDirectory = parse.GetValue(data)!,
                    LogLevel = parse.GetValue(verbose) ? Microsoft.Extensions.Logging.LogLevel.Information : Microsoft.Extensions.Logging.LogLevel.Warning,
                }, cancellationToken);
            }
            catch (StartupException e)
            {
                await Console.Error.WriteLineAsync($"flotilla serve: {e.Message}");
                return 1;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Anything unforeseen still ends in one line, not a stack trace (--verbose adds the type for a bug report).
                await Console.Error.WriteLineAsync($"flotilla serve: cannot start: {e.Message}{(parse.GetValue(verbose) ? $" ({e.GetType().FullName})" : "")}");
                return 1;
            }

            await using var running = server;
            // SIGHUP re-reads the fleet file as an apply: the usual way to tell a daemon its configuration changed.
            using var reload = OperatingSystem.IsWindows() ? null : PosixSignalRegistration.Create(PosixSignal.SIGHUP, signal =>
            {
                signal.Cancel = true;
                _ = ReloadAsync(server, path, cancellationToken);
            });
            var f = loaded.Fleet!;
            Console.WriteLine($"Flotilla serving {path} ({f.Agents.Count} agents, {f.Gateway.Models.Count} models, {f.Gateway.Routing.VirtualModels.Count} virtual models) on {server.Address}");
            Console.WriteLine($"  OpenAI-compatible: {server.Address}v1   MCP: {server.Address}mcp ({f.McpServers.Count} servers)   admin API: {server.Address}api   Ctrl+C stops.");
            await server.WaitForShutdownAsync(cancellationToken);
            return 0;
        });
        return command;
    }

    private static async Task ReloadAsync(FlotillaServer server, string path, CancellationToken cancellationToken)
    {
        try
        {
            var yaml = await File.ReadAllTextAsync(path, cancellationToken);
            var result = await server.Fleet.ApplyAsync(yaml, path, "SIGHUP", cancellationToken);
            if (!result.IsValid)
            {
                foreach (var error in result.Errors)
                {
                    await Console.Error.WriteLineAsync(error);
                }

                await Console.Error.WriteLineAsync($"SIGHUP: {path} has {result.Errors.Count} error(s); the fleet in force (revision {result.Revision}) is unchanged.");
                return;
            }

            Console.WriteLine(result.Applied
                ? $"SIGHUP: applied {path} as revision {result.Revision} ({result.Changes.Count} change(s)): {string.Join("; ", result.Changes)}"
                : $"SIGHUP: {path} has no changes; revision {result.Revision} stays in force.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            await Console.Error.WriteLineAsync($"SIGHUP: cannot apply {path}: {e.Message}");
        }
    }
}
