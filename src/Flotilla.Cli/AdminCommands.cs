using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Flotilla.Fleet;
using Spectre.Console;

namespace Flotilla.Cli;

/// <summary>Commands that operate a running server through its admin API.</summary>
internal static class AdminCommands
{
    internal static readonly Option<string> Server = new("--server")
    {
        Description = "The Flotilla server",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("FLOTILLA_SERVER") ?? "http://127.0.0.1:8080",
        Recursive = true,
    };

    internal static readonly Option<string> Data = new("--data")
    {
        Description = "Data directory of a local server, to find its generated admin token when FLOTILLA_ADMIN_TOKEN is unset",
        DefaultValueFactory = _ => ".flotilla",
        Recursive = true,
    };

    internal static readonly Option<bool> Json = new("--json") { Description = "Print the raw JSON", Recursive = true };

    public static IEnumerable<Command> Create()
    {
        yield return Traces();
        yield return Keys();
        yield return Agents();
        yield return Targets();
        yield return Cost();
        yield return Alerts();
        yield return Budgets();
    }

    private static Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken, Func<AdminClient, Task> action) =>
        RunAsync(parse, cancellationToken, async client =>
        {
            await action(client);
            return 0;
        });

    private static Command Budgets()
    {
        var command = new Command("budgets", "Spend against each budget in its current window") { Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, "api/budgets", null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("applies per", "key", "spent $", "limit $", "used", "window", "resets (UTC)", "mode");
            foreach (var b in result.RootElement.GetProperty("data").EnumerateArray())
            {
                var used = b.GetProperty("used_percent").GetDecimal();
                table.AddRow(Cell(Str(b, "applies_per")), Cell(Str(b, "key")), Money(b.GetProperty("spent_usd").GetDecimal()),
                    Money(b.GetProperty("limit_usd").GetDecimal()), used >= 100 ? $"[red]{used:0.#}%[/]" : used >= 75 ? $"[yellow]{used:0.#}%[/]" : $"{used:0.#}%",
                    Cell(Str(b, "window")), b.GetProperty("resets_at").GetDateTimeOffset().UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
                    Cell(Str(b, "mode")));
            }

            AnsiConsole.Write(table);
        }));
        return command;
    }

    private static Command Cost()
    {
        var by = new Option<string>("--by") { Description = "agent, team, model (that answered), virtual_model (asked for) or metadata.KEY", DefaultValueFactory = _ => "agent" };
        var since = new Option<string>("--since") { Description = "How far back: 24h, 7d, 30d or an ISO 8601 time", DefaultValueFactory = _ => "7d" };
        var until = new Option<string?>("--until") { Description = "End of the range (default: now)" };
        var command = new Command("cost", "Spend, tokens, calls, cache hits, fallbacks and errors rolled up by agent, team, model or tag") { by, since, until, Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var query = $"api/cost?by={Uri.EscapeDataString(parse.GetValue(by)!)}&since={Uri.EscapeDataString(parse.GetValue(since)!)}";
            if (parse.GetValue(until) is { } u) query += $"&until={Uri.EscapeDataString(u)}";
            using var result = await client.SendAsync(HttpMethod.Get, query, null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var root = result.RootElement;
            var table = new Table().Border(TableBorder.Simple)
                .AddColumns(root.GetProperty("by").GetString()!, "cost $", "share", "calls", "tokens in", "tokens out", "cache hits", "fallbacks", "errors", "$ / call");
            foreach (var column in table.Columns.Skip(1))
            {
                column.RightAligned();
            }

            var total = root.GetProperty("total");
            var totalCost = total.GetProperty("cost_usd").GetDecimal();
            foreach (var row in root.GetProperty("data").EnumerateArray())
            {
                var cost = row.GetProperty("cost_usd").GetDecimal();
                var calls = row.GetProperty("calls").GetInt64();
                table.AddRow(Cell(Str(row, "value")), Money(cost), totalCost == 0 ? "" : (cost / totalCost).ToString("P0", CultureInfo.InvariantCulture),
                    Num(calls), Num(row.GetProperty("input_tokens").GetInt64()), Num(row.GetProperty("output_tokens").GetInt64()),
                    Num(row.GetProperty("cache_hits").GetInt64()), Num(row.GetProperty("fallbacks").GetInt64()), Num(row.GetProperty("errors").GetInt64()),
                    calls == 0 ? "" : Money(cost / calls));
            }

            table.AddEmptyRow();
            table.AddRow("[bold]total[/]", $"[bold]{Money(totalCost)}[/]", "", Num(total.GetProperty("calls").GetInt64()),
                Num(total.GetProperty("input_tokens").GetInt64()), Num(total.GetProperty("output_tokens").GetInt64()),
                Num(total.GetProperty("cache_hits").GetInt64()), Num(total.GetProperty("fallbacks").GetInt64()), Num(total.GetProperty("errors").GetInt64()), "");
            AnsiConsole.MarkupLine($"Spend by [bold]{Cell(root.GetProperty("by").GetString()!)}[/] since {root.GetProperty("since").GetDateTimeOffset().UtcDateTime:yyyy-MM-dd HH:mm} UTC (whole hours)");
            AnsiConsole.Write(table);
        }));
        return command;
    }

    private static Command Alerts()
    {
        var since = new Option<string?>("--since") { Description = "How far back: 24h, 7d or an ISO 8601 time" };
        var limit = new Option<int>("--limit") { Description = "At most this many (newest first)", DefaultValueFactory = _ => 50 };
        var command = new Command("alerts", "Budget alerts and would-have-blocked events") { since, limit, Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var query = $"api/alerts?limit={parse.GetValue(limit)}";
            if (parse.GetValue(since) is { } s) query += $"&since={Uri.EscapeDataString(s)}";
            using var result = await client.SendAsync(HttpMethod.Get, query, null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("time (UTC)", "kind", "message", "webhook");
            foreach (var a in result.RootElement.GetProperty("data").EnumerateArray())
            {
                table.AddRow(a.GetProperty("at").GetDateTimeOffset().UtcDateTime.ToString("MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    Cell(Str(a, "kind")), Cell(Str(a, "message")), Cell(Str(a, "delivery")));
            }

            AnsiConsole.Write(table);
        }));
        return command;
    }

    private static string Money(decimal value) => value >= 1 ? value.ToString("0.00", CultureInfo.InvariantCulture) : value.ToString("0.######", CultureInfo.InvariantCulture);

    private static string Num(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static Command Traces()
    {
        var agent = new Option<string?>("--agent") { Description = "Only this agent's calls" };
        var since = new Option<string?>("--since") { Description = "How far back: 30m, 24h, 7d or an ISO 8601 time" };
        var limit = new Option<int>("--limit") { Description = "At most this many (newest first)", DefaultValueFactory = _ => 20 };
        var command = new Command("traces", "Show recent gateway calls") { agent, since, limit, Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var query = $"api/traces?limit={parse.GetValue(limit)}";
            if (parse.GetValue(agent) is { } a) query += $"&agent={Uri.EscapeDataString(a)}";
            if (parse.GetValue(since) is { } s) query += $"&since={Uri.EscapeDataString(s)}";
            using var result = await client.SendAsync(HttpMethod.Get, query, null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple)
                .AddColumns("time (UTC)", "agent", "model or tool", "attempts", "status", "tokens in/out", "cost $", "ttft ms", "total ms", "trace id");
            foreach (var t in result.RootElement.GetProperty("data").EnumerateArray())
            {
                var attempts = t.GetProperty("attempts").EnumerateArray()
                    .Select(x => $"{x.GetProperty("target").GetString()}:{(x.GetProperty("outcome").GetString() == "status" ? x.GetProperty("status").GetInt32().ToString(CultureInfo.InvariantCulture) : x.GetProperty("outcome").GetString())}");
                table.AddRow(
                    Cell(t.GetProperty("started_at").GetDateTimeOffset().UtcDateTime.ToString("MM-dd HH:mm:ss", CultureInfo.InvariantCulture)),
                    Cell(Str(t, "agent")),
                    Cell(Str(t, "requested_model")),
                    Cell(string.Join(" → ", attempts)),
                    t.GetProperty("status").GetInt32() is var code && code < 400 ? code.ToString(CultureInfo.InvariantCulture) : $"[red]{code}[/]",
                    $"{t.GetProperty("input_tokens").GetInt64()}/{t.GetProperty("output_tokens").GetInt64()}",
                    t.GetProperty("cost_usd").GetDecimal().ToString("0.######", CultureInfo.InvariantCulture),
                    t.TryGetProperty("ttft_ms", out var ttft) ? ttft.GetDouble().ToString("0.0", CultureInfo.InvariantCulture) : "",
                    t.GetProperty("latency_ms").GetDouble().ToString("0.0", CultureInfo.InvariantCulture),
                    Cell(t.GetProperty("id").GetString()!));
            }

            AnsiConsole.Write(table);
        }));
        return command;
    }

    private static Command Keys()
    {
        var agent = new Argument<string>("agent") { Description = "A registered agent" };
        var create = new Command("create", "Issue a new agent key (shown once)") { agent, Server, Data, Json };
        create.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            var body = JsonSerializer.Serialize(parse.GetValue(agent), CliJson.Default.String);
            using var result = await client.SendAsync(HttpMethod.Post, "api/keys", $"{{\"agent\":{body}}}", ct);
            if (!Print(parse, result))
            {
                Console.WriteLine($"Key for agent '{DisplayText.Safe(result.RootElement.GetProperty("agent").GetString() ?? "")}' (shown once; Flotilla keeps only its hash):");
                Console.WriteLine($"  {result.RootElement.GetProperty("key").GetString()}");
            }
        }));
        var list = new Command("list", "List active keys (prefixes only)") { Server, Data, Json };
        list.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, "api/keys", null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("id", "agent", "prefix", "created (UTC)");
            foreach (var k in result.RootElement.GetProperty("data").EnumerateArray())
            {
                table.AddRow(Cell(Str(k, "id")), Cell(Str(k, "agent")), Cell(Str(k, "prefix") + "…"),
                    k.GetProperty("created_at").GetDateTimeOffset().UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
        }));
        var id = new Argument<string>("id") { Description = "Key id (from keys list)" };
        var revoke = new Command("revoke", "Revoke a key at once") { id, Server, Data };
        revoke.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var _ = await client.SendAsync(HttpMethod.Delete, $"api/keys/{Uri.EscapeDataString(parse.GetValue(id)!)}", null, ct);
            Console.WriteLine($"revoked {parse.GetValue(id)}");
        }));
        return new Command("keys", "Manage agent keys") { create, list, revoke };
    }

    private static Command Agents()
    {
        var command = new Command("agents", "List the registered agents") { Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, "api/agents", null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("agent", "owner", "model", "schedule", "mcp servers", "owns", "keys");
            foreach (var a in result.RootElement.GetProperty("data").EnumerateArray())
            {
                table.AddRow(Cell(Str(a, "name")), Cell(Str(a, "owner")), Cell(Str(a, "model")), Cell(Str(a, "schedule")),
                    Cell(string.Join(", ", a.GetProperty("mcp_servers").EnumerateArray().Select(x => x.GetString()))),
                    Cell(string.Join(", ", a.GetProperty("owns").EnumerateArray().Select(x => x.GetString()))),
                    a.GetProperty("keys").GetInt32().ToString(CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
        }));
        command.Subcommands.Add(RunCommands.ShowAgent());
        return command;
    }

    private static Command Targets()
    {
        var command = new Command("targets", "Show model targets' health: failures, cooldown, time per token") { Server, Data, Json };
        command.SetAction((parse, ct) => RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, "api/targets", null, ct);
            if (Print(parse, result))
            {
                return;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("model", "provider", "failures in a row", "cooling until (UTC)", "ms/token");
            foreach (var t in result.RootElement.GetProperty("data").EnumerateArray())
            {
                table.AddRow(Cell(Str(t, "model")), Cell(Str(t, "provider")),
                    t.GetProperty("consecutive_failures").GetInt32().ToString(CultureInfo.InvariantCulture),
                    t.TryGetProperty("cooling_until", out var until) ? until.GetDateTimeOffset().UtcDateTime.ToString("HH:mm:ss", CultureInfo.InvariantCulture) : "",
                    t.TryGetProperty("ms_per_token", out var speed) ? speed.GetDouble().ToString("0.00", CultureInfo.InvariantCulture) : "");
            }

            AnsiConsole.Write(table);
        }));
        return command;
    }

    /// <summary>
    /// Table cell text: what the server returns may carry a caller's text (a model name, a tag), so control characters and
    /// bidirectional overrides are replaced before a terminal can act on them, then Spectre markup is escaped.
    /// </summary>
    internal static string Cell(string? text) => Markup.Escape(DisplayText.Safe(text ?? ""));

    internal static string Str(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : "";

    /// <summary>A timestamp of the admin API's JSON as MM-dd HH:mm:ss UTC; empty when absent.</summary>
    internal static string Time(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetDateTimeOffset().UtcDateTime.ToString("MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            : "";

    internal static string Shorten(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    internal static bool Print(ParseResult parse, JsonDocument result)
    {
        if (!parse.GetValue(Json))
        {
            return false;
        }

        Console.WriteLine(JsonSerializer.Serialize(result.RootElement, CliJson.Default.JsonElement));
        return true;
    }

    /// <summary>
    /// POSTs <paramref name="body"/> (JSON) to the admin API: a refusal is its message on stderr and exit 1; otherwise the
    /// answer is printed raw with <c>--json</c> (exit 0) or shown by <paramref name="show"/>, which gives the exit code.
    /// </summary>
    internal static async Task<int> PostAsync(AdminClient client, ParseResult parse, string path, string body, Func<JsonElement, int> show,
        CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? headers = null)
    {
        var (status, result) = await client.SendTextAsync(HttpMethod.Post, path, body, "application/json", headers, cancellationToken);
        using (result)
        {
            if (status >= 400)
            {
                await Console.Error.WriteLineAsync(DisplayText.Safe(result.RootElement.TryGetProperty("error", out var e) ? Str(e, "message") : $"HTTP {status}"));
                return 1;
            }

            return Print(parse, result) ? 0 : show(result.RootElement);
        }
    }

    internal static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken, Func<AdminClient, Task<int>> action)
    {
        if (Console.IsOutputRedirected)
        {
            // Piped or captured: do not squeeze tables into 80 columns.
            AnsiConsole.Profile.Width = 240;
        }

        var token = AdminClient.FindToken(parse.GetValue(Data)!);
        if (token is null)
        {
            await Console.Error.WriteLineAsync("No admin token: set FLOTILLA_ADMIN_TOKEN (the token `flotilla serve` printed at first start).");
            return 2;
        }

        if (!Uri.TryCreate(parse.GetValue(Server)!.TrimEnd('/') + "/", UriKind.Absolute, out var server))
        {
            await Console.Error.WriteLineAsync($"--server '{parse.GetValue(Server)}' is not a URL");
            return 2;
        }

        using var client = new AdminClient(server, token);
        try
        {
            return await action(client);
        }
        catch (CliException e)
        {
            await Console.Error.WriteLineAsync(DisplayText.Safe(e.Message));
            return 1;
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(JsonElement))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
