using System.Net;
using System.Net.Http.Headers;
using Flotilla.Fleet.Loading;
using Flotilla.Server.Hosting;

namespace Flotilla.Gateway.Tests.Hosting;

/// <summary>
/// What a start does before it serves: the admin token (never empty, never short), the data directory (owner-only, or a
/// warning), one-line refusals, and a warning for each fleet key that is read but not acted on yet.
/// </summary>
public sealed class StartupTests : IDisposable
{
    private const string Fleet = """
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - { name: sim-chat, provider: sim }
        ---
        agent:
          name: tester
          owner: qa
        """;

    private readonly string _data = Path.Combine(Path.GetTempPath(), "flotilla-tests", Guid.NewGuid().ToString("N"), "data");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_empty_admin_token_file_left_by_a_crash_stops_the_start_instead_of_opening_the_admin_api()
    {
        Directory.CreateDirectory(_data);
        await File.WriteAllTextAsync(Path.Combine(_data, AdminToken.FileName), "", Ct);
        var refused = await Should.ThrowAsync<StartupException>(() => StartAsync());
        refused.Message.ShouldContain("is empty");
        refused.Message.ShouldContain("delete the file");
        refused.Message.ShouldNotContain("\n");
    }

    [Theory]
    [InlineData("short-token")]
    [InlineData("   ")]
    public async Task A_configured_admin_token_under_32_characters_is_refused(string token)
    {
        var refused = await Should.ThrowAsync<StartupException>(() => StartAsync(adminToken: token));
        refused.Message.ShouldContain("32 characters");
        refused.Message.ShouldNotContain(token.Trim().Length > 0 ? token : "\u0000");
    }

    [Fact]
    public async Task A_generated_token_is_long_owner_only_and_leaves_no_temporary_file()
    {
        await using var server = await StartAsync();
        var file = Path.Combine(_data, AdminToken.FileName);
        var token = (await File.ReadAllTextAsync(file, Ct)).Trim();
        token.Length.ShouldBeGreaterThanOrEqualTo(AdminToken.MinimumLength);
        token.ShouldBe(server.AdminTokenValue);
        Directory.GetFiles(_data, AdminToken.FileName + ".tmp-*").ShouldBeEmpty();
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(file).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    [Theory]
    [InlineData("\v")]
    [InlineData("\u00A0")]
    [InlineData(" \t ")]
    public async Task A_blank_presented_admin_token_is_refused_before_any_comparison(string blank)
    {
        await using var server = await StartAsync();
        // The header goes out as UTF-8, as a hand-made request would send a non-breaking space.
        using var client = new HttpClient(new SocketsHttpHandler { RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8 })
        {
            BaseAddress = server.Address,
        };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/keys");
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + blank);
        using var response = await client.SendAsync(request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        response.StatusCode.ShouldBeOneOf([HttpStatusCode.Unauthorized, HttpStatusCode.BadRequest], body);
        if (response.StatusCode == HttpStatusCode.Unauthorized)
        {
            body.ShouldContain("\"code\":\"missing_admin_token\"");
        }

        request.Headers.Authorization = null;
        using var good = new HttpRequestMessage(HttpMethod.Get, "/api/keys");
        good.Headers.Authorization = new AuthenticationHeaderValue("Bearer", server.AdminTokenValue);
        (await client.SendAsync(good, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_new_data_directory_is_owner_only_and_so_are_the_database_and_its_journal_files()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        await using (var server = await StartAsync())
        {
            File.GetUnixFileMode(_data).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var key = await server.IssueKeyAsync("tester", Ct);
            using var client = new HttpClient { BaseAddress = server.Address };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var answer = await client.PostAsync("/v1/chat/completions",
                new StringContent("""{"model":"sim-chat","messages":[{"role":"user","content":"hi"}]}"""), Ct);
            answer.StatusCode.ShouldBe(HttpStatusCode.OK);
            var files = Directory.GetFiles(_data, "flotilla.db*");
            files.ShouldContain(f => f.EndsWith("-wal", StringComparison.Ordinal));
            foreach (var file in files)
            {
                File.GetUnixFileMode(file).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite, file);
            }
        }
    }

    [Fact]
    public async Task An_existing_directory_open_to_others_is_reported_and_its_database_tightened()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        Directory.CreateDirectory(_data);
        File.SetUnixFileMode(_data, (UnixFileMode)0b111_101_101);
        await File.WriteAllBytesAsync(Path.Combine(_data, "flotilla.db"), [], Ct);
        File.SetUnixFileMode(Path.Combine(_data, "flotilla.db"), (UnixFileMode)0b110_100_100);
        var console = new StringWriter();
        await using var server = await StartAsync(console: console);
        console.ToString().ShouldContain($"warning: the data directory '{_data}' is open to other local users (mode 0755)");
        File.GetUnixFileMode(Path.Combine(_data, "flotilla.db")).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    [Fact]
    public async Task A_data_directory_that_cannot_be_created_is_one_line_that_names_it()
    {
        var refused = await Should.ThrowAsync<StartupException>(() => StartAsync(data: "/proc/flotilla-nope"));
        refused.Message.ShouldStartWith("cannot use the data directory '/proc/flotilla-nope'");
        refused.Message.ShouldContain("--data");
        refused.Message.ShouldNotContain("\n");
    }

    [Fact]
    public async Task Each_fleet_key_that_is_read_but_not_yet_enforced_gets_one_warning_and_enforced_ones_none()
    {
        var northwind = FleetLoader.LoadFile(Path.Combine(RepositoryRoot(), "examples", "northwind", "fleet.yaml"));
        northwind.IsValid.ShouldBeTrue(string.Join("\n", northwind.Errors));
        var console = new StringWriter();
        await using var server = await StartAsync(console: console, fleet: northwind.Fleet!);
        var warnings = console.ToString().Split('\n').Where(l => l.StartsWith("warning: ", StringComparison.Ordinal)).ToList();
        foreach (var key in new[]
        {
            "agent.owns names 'release-notes-draft' with no gateway.artifacts entry",
        })
        {
            warnings.Count(w => w.StartsWith("warning: " + key, StringComparison.Ordinal)).ShouldBe(1, key);
        }

        // The MCP gateway enforces guardrails on tools, the destructive list, servers and grants: no warning for them.
        // The harness enforces run limits and reads pinned instructions: no warning for them either.
        foreach (var enforced in new[] { "gateway.guardrails.mcp_", "gateway.destructive_tools", "mcp_server", "agent.mcp_servers", "gateway.guardrails.llm_input", "agent.harness", "agent.instructions", "agent.trigger", "agent.subagents", "agent.checker", "agent.skills" })
        {
            warnings.ShouldNotContain(w => w.StartsWith("warning: " + enforced, StringComparison.Ordinal), enforced);
        }
    }

    private Task<FlotillaServer> StartAsync(string? adminToken = null, string? data = null, TextWriter? console = null, Flotilla.Fleet.FleetConfig? fleet = null)
    {
        var loaded = FleetLoader.Parse(Fleet, "fleet.yaml");
        return FlotillaServer.StartAsync(new FlotillaServerOptions
        {
            Fleet = fleet ?? loaded.Fleet!,
            Urls = "http://127.0.0.1:0",
            DataDirectory = data ?? _data,
            AdminToken = adminToken,
            Console = console ?? TextWriter.Null,
        }, Ct);
    }

    internal static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Flotilla.slnx")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("the repository root (Flotilla.slnx) was not found above the test binaries");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path.GetDirectoryName(_data)!, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
