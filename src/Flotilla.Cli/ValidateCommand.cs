using System.CommandLine;
using Flotilla.Fleet.Loading;

namespace Flotilla.Cli;

/// <summary><c>flotilla validate FILE</c>: every error as FILE:LINE:COL: message; exit 1 when any.</summary>
internal static class ValidateCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The fleet file to check" };
        var command = new Command("validate", "Check a fleet file and report every error with its line and column") { file };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            var result = FleetLoader.LoadFile(path);
            if (result.IsValid)
            {
                var fleet = result.Fleet!;
                Console.WriteLine($"{path}: valid ({fleet.Gateway.Providers.Count} providers, {fleet.Gateway.Models.Count} models, " +
                    $"{fleet.Gateway.Routing.VirtualModels.Count} virtual models, {fleet.McpServers.Count} MCP servers, {fleet.Agents.Count} agents)");
                return 0;
            }

            foreach (var error in result.Errors)
            {
                Console.WriteLine(error.ToString());
            }

            Console.Error.WriteLine($"{result.Errors.Count} error(s)");
            return 1;
        });
        return command;
    }
}
