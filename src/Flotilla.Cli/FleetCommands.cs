using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Fleet.Loading;
using Spectre.Console;

namespace Flotilla.Cli;

/// <summary>
/// GitOps against a running server: <c>plan FILE</c> (exit 0 no changes, 2 changes, 1 errors), <c>apply FILE</c>,
/// <c>apply --revision N</c> (roll back or forward to a stored revision) and <c>revisions</c>.
/// </summary>
internal static class FleetCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Plan();
        yield return Apply();
        yield return Revisions();
    }

    private static Command Plan()
    {
        var file = new Argument<string>("file") { Description = "The fleet file to compare with the running fleet" };
        var command = new Command("plan", "Show what applying a fleet file would change on the running server (exit 0: none, 2: changes, 1: errors)")
        {
            file, AdminCommands.Server, AdminCommands.Data, AdminCommands.Json,
        };
        command.SetAction((parse, ct) => ReadValid(parse.GetValue(file)!) is not { } yaml
            ? Task.FromResult(1)
            : AdminCommands.RunAsync(parse, ct, async client =>
            {
                var (ok, changes, _) = await SendAsync(client, parse, yaml, parse.GetValue(file)!, dryRun: true, ct);
                if (!ok)
                {
                    return 1;
                }

                if (!parse.GetValue(AdminCommands.Json))
                {
                    PrintChanges(changes);
                }

                return changes.Count == 0 ? 0 : 2;
            }));
        return command;
    }

    private static Command Apply()
    {
        var file = new Argument<string?>("file") { Description = "The fleet file to apply", Arity = ArgumentArity.ZeroOrOne };
        var revision = new Option<int?>("--revision") { Description = "Apply a stored revision again instead of a file (one-step rollback)" };
        var command = new Command("apply", "Apply a fleet file (or a stored revision) to the running server atomically; spend, limits, cache and keys are kept")
        {
            file, revision, AdminCommands.Server, AdminCommands.Data, AdminCommands.Json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file);
            var number = parse.GetValue(revision);
            if ((path is null) == (number is null))
            {
                await Console.Error.WriteLineAsync("apply takes a fleet file or --revision N (one of them).");
                return 2;
            }

            string? yaml = null;
            if (path is not null && (yaml = ReadValid(path)) is null)
            {
                return 1;
            }

            return await AdminCommands.RunAsync(parse, ct, async client =>
            {
                var name = path;
                if (number is { } n)
                {
                    using var stored = await client.SendAsync(HttpMethod.Get, $"api/fleet/revisions/{n}", null, ct);
                    yaml = stored.RootElement.GetProperty("yaml").GetString()!;
                    name = $"revision-{n}.yaml";
                }

                var (ok, changes, result) = await SendAsync(client, parse, yaml!, name!, dryRun: false, ct);
                if (!ok)
                {
                    return 1;
                }

                if (!parse.GetValue(AdminCommands.Json))
                {
                    PrintChanges(changes);
                    if (result.GetProperty("applied").GetBoolean())
                    {
                        Console.WriteLine($"Applied: the fleet is now revision {result.GetProperty("revision").GetInt32()}" +
                            (number is { } m ? $" (the YAML of revision {m})." : "."));
                    }
                }

                return 0;
            });
        });
        return command;
    }

    private static Command Revisions()
    {
        var limit = new Option<int>("--limit") { Description = "At most this many (newest first)", DefaultValueFactory = _ => 20 };
        var command = new Command("revisions", "List applied fleet revisions: number, time, who, SHA-256 and what changed")
        {
            limit, AdminCommands.Server, AdminCommands.Data, AdminCommands.Json,
        };
        command.SetAction((parse, ct) => AdminCommands.RunAsync(parse, ct, async client =>
        {
            using var result = await client.SendAsync(HttpMethod.Get, $"api/fleet/revisions?limit={parse.GetValue(limit)}", null, ct);
            if (AdminCommands.Print(parse, result))
            {
                return 0;
            }

            var table = new Table().Border(TableBorder.Simple).AddColumns("revision", "applied (UTC)", "by", "sha256", "changes");
            foreach (var r in result.RootElement.GetProperty("data").EnumerateArray())
            {
                var changes = r.GetProperty("changes").EnumerateArray().Select(c => c.GetString()!).ToList();
                var summary = changes.Count == 0 ? "" : string.Join("; ", changes.Take(5)) + (changes.Count > 5 ? $"; … {changes.Count - 5} more" : "");
                table.AddRow(r.GetProperty("revision").GetInt32().ToString(CultureInfo.InvariantCulture),
                    r.GetProperty("applied_at").GetDateTimeOffset().UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    AdminCommands.Cell(AdminCommands.Str(r, "applied_by")), AdminCommands.Cell(AdminCommands.Str(r, "sha256")[..12]), AdminCommands.Cell(summary));
            }

            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }

    /// <summary>The file's text when it reads and validates; otherwise prints every error (as validate does) and returns null.</summary>
    private static string? ReadValid(string path)
    {
        var result = FleetLoader.LoadFile(path);
        if (!result.IsValid)
        {
            foreach (var error in result.Errors)
            {
                Console.WriteLine(error.ToString());
            }

            Console.Error.WriteLine($"{result.Errors.Count} error(s); nothing sent to the server.");
            return null;
        }

        return File.ReadAllText(path);
    }

    private static async Task<(bool Ok, IReadOnlyList<string> Changes, JsonElement Result)> SendAsync(
        AdminClient client, ParseResult parse, string yaml, string name, bool dryRun, CancellationToken ct)
    {
        var path = $"api/fleet?file={Uri.EscapeDataString(Path.GetFileName(name))}{(dryRun ? "&dry_run=true" : "")}";
        var (status, json) = await client.SendTextAsync(HttpMethod.Post, path, yaml, "application/yaml",
            new Dictionary<string, string> { ["X-Flotilla-Actor"] = Environment.UserName }, ct);
        using (json)
        {
            var root = json.RootElement.Clone();
            if (parse.GetValue(AdminCommands.Json))
            {
                Console.WriteLine(JsonSerializer.Serialize(root, CliJson.Default.JsonElement));
            }

            if (status != 200)
            {
                if (!parse.GetValue(AdminCommands.Json))
                {
                    foreach (var error in root.TryGetProperty("errors", out var errors) ? errors.EnumerateArray() : [])
                    {
                        Console.WriteLine(DisplayText.Safe(error.GetString() ?? ""));
                    }

                    var message = root.TryGetProperty("error", out var e) && e.TryGetProperty("message", out var m) ? m.GetString() : $"HTTP {status}";
                    await Console.Error.WriteLineAsync(DisplayText.Safe(message ?? ""));
                }

                return (false, [], root);
            }

            return (true, root.GetProperty("changes").EnumerateArray().Select(c => c.GetString()!).ToList(), root);
        }
    }

    private static void PrintChanges(IReadOnlyList<string> changes)
    {
        if (changes.Count == 0)
        {
            Console.WriteLine("No changes.");
            return;
        }

        foreach (var change in changes)
        {
            Console.WriteLine(DisplayText.Safe(change));
        }

        Console.WriteLine($"{changes.Count} change(s).");
    }
}
