using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using static Flotilla.Cli.AdminCommands;

namespace Flotilla.Cli;

/// <summary>The MCP gateway's operator commands: approvals of destructive tool calls.</summary>
internal static class McpCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Servers();
        yield return Approvals();
        yield return Decide("approve", "Approve a pending destructive tool call: the loop's next identical call runs it, once", reasonRequired: false);
        yield return WhoTouches();
        yield return Decide("deny", "Deny a pending destructive tool call; the loop is told who denied it and why", reasonRequired: true);
    }

    private static Command Servers()
    {
        var command = new Command("mcp-servers", "The fleet's MCP servers: reached how, answering or not (and why), tools served") { AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, "api/mcp/servers", null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("server", "transport", "state", "tools", "prompts", "resources", "why not ready");
            foreach (var s in result.RootElement.GetProperty("data").EnumerateArray())
            {
                var state = Str(s, "state");
                table.AddRow(Cell(Str(s, "name")), Cell(Str(s, "transport")), state == "ready" ? "ready" : $"[red]{Cell(state)}[/]",
                    s.GetProperty("tools").GetInt32().ToString(CultureInfo.InvariantCulture), s.GetProperty("prompts").GetInt32().ToString(CultureInfo.InvariantCulture),
                    s.GetProperty("resources").GetInt32().ToString(CultureInfo.InvariantCulture), Cell(Str(s, "failure")));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command Approvals()
    {
        var all = new Option<bool>("--all") { Description = "Every approval, not only pending ones (newest first)" };
        var limit = new Option<int>("--limit") { Description = "At most this many", DefaultValueFactory = _ => 50 };
        var command = new Command("approvals", "Destructive tool calls waiting for a human (and, with --all, past decisions)") { all, limit, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var query = $"api/approvals?limit={parse.GetValue(limit)}" + (parse.GetValue(all) ? "" : "&status=pending");
            using var result = await client.SendAsync(HttpMethod.Get, query, null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var rows = result.RootElement.GetProperty("data").EnumerateArray().ToList();
            if (rows.Count == 0)
            {
                AnsiConsole.MarkupLine(parse.GetValue(all) ? "No approvals yet." : "Nothing waits for approval.");
                return 0;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("id", "requested (UTC)", "agent", "tool", "arguments", "status", "decided by", "expires (UTC)");
            foreach (var a in rows)
            {
                table.AddRow(Cell(Str(a, "id")), Time(a, "requested_at"), Cell(Str(a, "agent")), Cell($"{Str(a, "server")}__{Str(a, "tool")}"),
                    Cell(Shorten(Str(a, "arguments"), 80)), Cell(Str(a, "status")),
                    Cell(Str(a, "decided_by") + (Str(a, "reason") is { Length: > 0 } why ? $": {why}" : "")), Time(a, "expires_at"));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    private static Command Decide(string decision, string description, bool reasonRequired)
    {
        var id = new Argument<string>("id") { Description = "The approval id (apr_…), from `flotilla approvals`" };
        var reason = new Option<string?>("--reason") { Description = reasonRequired ? "Why (required): the loop and the audit trail see it" : "Why (kept on the record)", Required = reasonRequired };
        var command = new Command(decision, description) { id, reason, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, string?> { ["reason"] = parse.GetValue(reason) }, CliMcpJson.Default.DictionaryStringString);
            return await PostAsync(client, parse, $"api/approvals/{Uri.EscapeDataString(parse.GetValue(id)!)}/{decision}", body, a =>
            {
                AnsiConsole.MarkupLine($"{Cell(Str(a, "id"))} {Cell(Str(a, "status"))} by {Cell(Str(a, "decided_by"))}: {Cell($"{Str(a, "server")}__{Str(a, "tool")}")} for agent {Cell(Str(a, "agent"))}" +
                    (decision == "approve" ? " — it runs when the loop calls it again." : "."));
                return 0;
            }, ct, new Dictionary<string, string> { ["X-Flotilla-Actor"] = Environment.UserName });
        }));
        return command;
    }

    private static Command WhoTouches()
    {
        var artifact = new Argument<string>("artifact") { Description = "An artifact named under gateway.artifacts or in an agent's owns" };
        var command = new Command("who-touches", "Which loop owns an artifact, which are granted tools that write it, and which called them") { artifact, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, $"api/artifacts/{Uri.EscapeDataString(parse.GetValue(artifact)!)}", null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var r = result.RootElement;
            AnsiConsole.MarkupLine($"[bold]{Cell(Str(r, "name"))}[/]: owned by {(Str(r, "owner") is { Length: > 0 } owner ? Cell(owner) : "[yellow]nobody[/] (no agent's owns claims it)")}");
            var writes = r.GetProperty("writes").EnumerateArray().ToList();
            if (writes.Count == 0)
            {
                AnsiConsole.MarkupLine("[yellow]No gateway.artifacts entry says how a write is recognised, so writes are neither checked nor traced as writes.[/]");
            }

            foreach (var w in writes)
            {
                var args = w.GetProperty("args").EnumerateObject().Select(a => $"{a.Name}={a.Value.GetString()}");
                AnsiConsole.MarkupLine($"  written by {Cell(Str(w, "server"))}: {Cell(string.Join(", ", w.GetProperty("tools").EnumerateArray().Select(t => t.GetString())))}" +
                    (args.Any() ? $" where {Cell(string.Join(", ", args))}" : ""));
            }

            var grants = new Table().Border(TableBorder.Simple).Title("can write (by grant)").AddColumns("agent", "tools", "owner");
            foreach (var g in r.GetProperty("can_write").EnumerateArray())
            {
                grants.AddRow(Cell(Str(g, "agent")), Cell(string.Join(", ", g.GetProperty("tools").EnumerateArray().Select(t => t.GetString()))),
                    g.GetProperty("is_owner").GetBoolean() ? "yes" : "[red]no: refused at call time[/]");
            }

            AnsiConsole.Write(grants);
            var wrote = new Table().Border(TableBorder.Simple).Title("called (from traces)").AddColumns("agent", "calls", "refused", "last (UTC)");
            foreach (var w in r.GetProperty("wrote").EnumerateArray())
            {
                wrote.AddRow(Cell(Str(w, "agent")), w.GetProperty("calls").GetInt32().ToString(CultureInfo.InvariantCulture),
                    w.GetProperty("refused").GetInt32().ToString(CultureInfo.InvariantCulture), Time(w, "last_at"));
            }

            AnsiConsole.Write(wrote);
            return 0;
        }));
        return command;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string?>))]
internal sealed partial class CliMcpJson : System.Text.Json.Serialization.JsonSerializerContext;
