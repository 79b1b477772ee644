using System.CommandLine;
using Flotilla.Cli;

var root = new RootCommand("Flotilla: operate a fleet of unattended AI agent loops.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(ValidateCommand.Create());
foreach (var command in FleetCommands.Create().Concat(AdminCommands.Create()).Concat(McpCommands.Create()).Concat(RunCommands.Create()))
{
    root.Subcommands.Add(command);
}

return await root.Parse(args).InvokeAsync();
