using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using static Flotilla.Cli.AdminCommands;

namespace Flotilla.Cli;

/// <summary>The harness's operator commands: start a run, list runs, show one step by step, cancel or resume it.</summary>
internal static class RunCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Run();
        yield return Runs();
    }

    private static Command Run()
    {
        var agent = new Argument<string>("agent") { Description = "The agent (loop) to run, as named in the fleet" };
        var input = new Option<string?>("--input") { Description = "What the run is asked to do (its user message)" };
        var wait = new Option<bool>("--wait") { Description = "Wait until the run ends or waits for a human, then show it" };
        var command = new Command("run", "Start a run of a loop now") { agent, input, wait, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var body = JsonSerializer.Serialize(new Dictionary<string, JsonElement>
            {
                ["input"] = JsonSerializer.SerializeToElement(parse.GetValue(input) ?? "", CliRunJson.Default.String),
                ["wait"] = JsonSerializer.SerializeToElement(parse.GetValue(wait), CliRunJson.Default.Boolean),
            }, CliRunJson.Default.DictionaryStringJsonElement);
            return await PostAsync(client, parse, $"api/agents/{Uri.EscapeDataString(parse.GetValue(agent)!)}/runs", body, r =>
            {
                AnsiConsole.MarkupLine($"{Cell(Str(r, "id"))} {StatusCell(Str(r, "status"))} ({Cell(Str(r, "agent"))}, {Steps(r)})" +
                    (Str(r, "reason") is { Length: > 0 } why ? $": {Cell(why)}" : ""));
                if (Str(r, "output") is { Length: > 0 } output)
                {
                    AnsiConsole.WriteLine(Flotilla.Fleet.DisplayText.Safe(output, 4000));
                }

                return Str(r, "status") is "completed" or "running" or "awaiting_approval" ? 0 : 2;
            }, ct);
        }));
        return command;
    }

    private static Command Runs()
    {
        var agent = new Option<string?>("--agent") { Description = "Only this agent's runs" };
        var status = new Option<string?>("--status") { Description = "Only runs in this state (running, awaiting_approval, completed, failed, limit_reached, stuck, denied, cancelled, needs_intervention)" };
        var limit = new Option<int>("--limit") { Description = "At most this many", DefaultValueFactory = _ => 50 };
        var command = new Command("runs", "Runs of the fleet's loops, newest first; `runs show|cancel|resume ID`") { agent, status, limit, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var query = $"api/runs?limit={parse.GetValue(limit)}" +
                (parse.GetValue(agent) is { } a ? $"&agent={Uri.EscapeDataString(a)}" : "") +
                (parse.GetValue(status) is { } s ? $"&status={Uri.EscapeDataString(s)}" : "");
            using var result = await client.SendAsync(HttpMethod.Get, query, null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var rows = result.RootElement.GetProperty("data").EnumerateArray().ToList();
            if (rows.Count == 0)
            {
                AnsiConsole.MarkupLine("No runs yet. Start one: ./flotilla run AGENT --input TEXT --wait");
                return 0;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("id", "started (UTC)", "agent", "status", "steps", "tokens in/out", "cost $", "why");
            foreach (var r in rows)
            {
                table.AddRow(Cell(Str(r, "id")), Time(r, "created_at"), Cell(Str(r, "agent")), StatusCell(Str(r, "status")), Steps(r),
                    $"{r.GetProperty("input_tokens").GetInt64()}/{r.GetProperty("output_tokens").GetInt64()}",
                    r.GetProperty("cost_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture), Cell(Shorten(Str(r, "reason"), 70)));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Act("cancel", "Cancel a run that is not over"));
        command.Subcommands.Add(Act("resume", "Resume a run that awaits approval or needs a human (after checking the side effect it names)"));
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<string>("id") { Description = "The run id (run_…)" };
        var command = new Command("show", "A run step by step: model calls (tokens, cost, latency) and tool calls (results, approvals)") { id, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, $"api/runs/{Uri.EscapeDataString(parse.GetValue(id)!)}", null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var r = result.RootElement.GetProperty("run");
            AnsiConsole.MarkupLine($"[bold]{Cell(Str(r, "id"))}[/] {Cell(Str(r, "agent"))} {StatusCell(Str(r, "status"))}, {Steps(r)}, " +
                $"{r.GetProperty("input_tokens").GetInt64()}/{r.GetProperty("output_tokens").GetInt64()} tokens, ${r.GetProperty("cost_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture)}" +
                (Str(r, "reason") is { Length: > 0 } why ? $"\n  why: {Cell(why)}" : ""));
            AnsiConsole.MarkupLine($"  input: {Cell(Shorten(Str(r, "input"), 300))}");
            var verdicts = result.RootElement.TryGetProperty("guardrails", out var g)
                ? g.EnumerateArray().ToDictionary(v => v.GetProperty("seq").GetInt32(), v => string.Join(", ", v.GetProperty("verdicts").EnumerateArray()
                    .Select(x => $"{Str(x, "hook")} {Str(x, "guardrail")}: {Str(x, "outcome")}")))
                : [];
            var table = new Table().Border(TableBorder.Simple).AddColumns("#", "kind", "name", "state", "tokens in/out", "cost $", "ms", "what happened", "guardrails");
            foreach (var s in result.RootElement.GetProperty("steps").EnumerateArray())
            {
                table.AddRow(s.GetProperty("seq").GetInt32().ToString(CultureInfo.InvariantCulture), Cell(Str(s, "kind")), Cell(Str(s, "name")),
                    s.GetProperty("is_error").GetBoolean() ? "[red]error[/]" : Cell(Str(s, "status")),
                    $"{s.GetProperty("input_tokens").GetInt64()}/{s.GetProperty("output_tokens").GetInt64()}",
                    s.GetProperty("cost_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture),
                    s.GetProperty("latency_ms").GetDouble().ToString("0.#", CultureInfo.InvariantCulture), Cell(Shorten(Describe(s), 90)),
                    Cell(Shorten(verdicts.GetValueOrDefault(s.GetProperty("seq").GetInt32()) ?? "", 80)));
            }

            AnsiConsole.Write(table);
            if (Str(r, "output") is { Length: > 0 } output)
            {
                AnsiConsole.MarkupLine($"  output: {Cell(Shorten(output, 2000))}");
            }

            return 0;
        }));
        return command;
    }

    private static Command Act(string action, string description)
    {
        var id = new Argument<string>("id") { Description = "The run id (run_…)" };
        var command = new Command(action, description) { id, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            return await PostAsync(client, parse, $"api/runs/{Uri.EscapeDataString(parse.GetValue(id)!)}/{action}", "", r =>
            {
                AnsiConsole.MarkupLine($"{Cell(Str(r, "id"))} {StatusCell(Str(r, "status"))}");
                return 0;
            }, ct);
        }));
        return command;
    }

    /// <summary><c>agents show NAME</c>: the registry's view of one loop.</summary>
    public static Command ShowAgent()
    {
        var name = new Argument<string>("name") { Description = "The agent, as named in the fleet" };
        var command = new Command("show", "One loop: definition, the tools its grants resolve to, limits, trigger, last runs, spend this week") { name, AdminCommands.Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, $"api/agents/{Uri.EscapeDataString(parse.GetValue(name)!)}", null, ct);
            if (Print(parse, result))
            {
                return 0;
            }

            var a = result.RootElement;
            AnsiConsole.MarkupLine($"[bold]{Cell(Str(a, "name"))}[/] ({Cell(Str(a, "role"))}), owned by {Cell(Str(a, "owner"))}" +
                (Str(a, "description") is { Length: > 0 } d ? $": {Cell(d)}" : ""));
            AnsiConsole.MarkupLine($"  model: {Cell(Str(a, "model") is { Length: > 0 } m ? m : "(the gateway default)")}" +
                (Str(a, "checker") is { Length: > 0 } c ? $"   checker: {Cell(c)}" : ""));
            if (Str(a, "instructions") is { Length: > 0 } instructions)
            {
                var found = a.TryGetProperty("instructions_found", out var f) && f.ValueKind == JsonValueKind.True;
                AnsiConsole.MarkupLine($"  instructions: {Cell(instructions)} → {Cell(Str(a, "instructions_file"))} {(found ? "" : "[red](missing: runs fail)[/]")}");
            }

            var limits = a.GetProperty("limits");
            AnsiConsole.MarkupLine($"  limits: {limits.GetProperty("max_steps").GetInt32()} steps, {limits.GetProperty("max_tokens_per_run").GetInt64()} tokens, " +
                $"{limits.GetProperty("timeout_seconds").GetInt32()} s" + (limits.TryGetProperty("max_cost_per_run", out var cost) ? $", ${cost.GetDecimal()}" : "") + " per run");
            if (a.TryGetProperty("trigger", out var trigger))
            {
                AnsiConsole.MarkupLine($"  trigger: {Cell(Str(trigger, "schedule") is { Length: > 0 } s ? s + (Str(trigger, "timezone") is { Length: > 0 } z ? $" ({z})" : " (UTC)") : "on demand")}" +
                    $", concurrency {trigger.GetProperty("concurrency").GetInt32()}, missed beats: {Cell(Str(trigger, "missed"))}" + (trigger.GetProperty("webhook").GetBoolean() ? ", webhook" : ""));
            }

            AnsiConsole.MarkupLine($"  tools now: {Cell(string.Join(", ", a.GetProperty("tools").EnumerateArray().Select(t => t.GetString())) is { Length: > 0 } tools ? tools : "(none)")}");
            AnsiConsole.MarkupLine($"  spend, last 7 days: ${a.GetProperty("spend_last7_days_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture)}   keys: {a.GetProperty("keys").GetInt32()}");
            var table = new Table().Border(TableBorder.Simple).Title("last runs").AddColumns("id", "started (UTC)", "status", "steps", "cost $");
            foreach (var r in a.GetProperty("last_runs").EnumerateArray())
            {
                table.AddRow(Cell(Str(r, "id")), Time(r, "created_at"), StatusCell(Str(r, "status")), Steps(r),
                    r.GetProperty("cost_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    /// <summary>A step in a few words: a model step's answer or tool calls; a tool step's call and result.</summary>
    private static string Describe(JsonElement step)
    {
        var result = Str(step, "result");
        if (Str(step, "kind") == "tool")
        {
            var approval = Str(step, "approval_id") is { Length: > 0 } a ? $" [approval {a}]" : "";
            return $"{result}{approval}";
        }

        try
        {
            using var message = JsonDocument.Parse(result.Length == 0 ? "{}" : result);
            if (message.RootElement.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                return "calls " + string.Join(", ", calls.EnumerateArray().Select(c => c.GetProperty("function").GetProperty("name").GetString()));
            }

            return message.RootElement.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String ? content.GetString()! : result;
        }
        catch (JsonException)
        {
            return result;
        }
    }

    private static string Steps(JsonElement run) => $"{run.GetProperty("steps").GetInt32()} step{(run.GetProperty("steps").GetInt32() == 1 ? "" : "s")}";

    private static string StatusCell(string status) => status switch
    {
        "completed" => "[green]completed[/]",
        "running" => "running",
        "awaiting_approval" or "needs_intervention" => $"[yellow]{status}[/]",
        _ => $"[red]{Cell(status)}[/]",
    };
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, JsonElement>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
internal sealed partial class CliRunJson : System.Text.Json.Serialization.JsonSerializerContext;
