using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Flotilla.Gateway.Tests.Hosting;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>
/// The real MCP servers from npm that ./test.sh installs under tests/mcp-servers (npm ci). Missing, they fail the tests
/// that need them with the command to run; never a silent skip.
/// </summary>
internal static class NpmServers
{
    public static string Directory { get; } = Path.Combine(StartupTests.RepositoryRoot(), "tests", "mcp-servers");

    public static string Everything => Script("@modelcontextprotocol/server-everything/dist/index.js");

    public static string Filesystem => Script("@modelcontextprotocol/server-filesystem/dist/index.js");

    /// <summary>
    /// Runs the MCP inspector's CLI (@modelcontextprotocol/inspector-cli, a version that runs on node 20) against
    /// <paramref name="url"/> with <paramref name="key"/>; returns its exit code and output. It reads its own package.json
    /// relative to the working directory, so it runs from its build directory.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> InspectorAsync(Uri url, string key, params string[] arguments)
    {
        var build = Path.GetDirectoryName(Script("@modelcontextprotocol/inspector-cli/build/index.js"))!;
        var start = new ProcessStartInfo("node", ["index.js", url.ToString(), "--transport", "http", "--header", $"Authorization: Bearer {key}", .. arguments])
        {
            WorkingDirectory = build,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output + await error);
    }

    /// <summary>Preloaded into servers the tests start themselves, so they bind 127.0.0.1 only.</summary>
    public static string Loopback => Path.Combine(Directory, "loopback.cjs");

    private static string Script(string relative)
    {
        var path = Path.Combine(Directory, "node_modules", relative);
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} is missing: run `npm ci --prefix tests/mcp-servers` (./test.sh does) to install the MCP servers the tests use");
    }

    /// <summary>server-everything over streamable HTTP on a free 127.0.0.1 port; killed on dispose.</summary>
    public static async Task<(Process Process, Uri Url)> StartEverythingHttpAsync()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var start = new ProcessStartInfo("node", ["--require", Loopback, Everything, "streamableHttp"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.Environment["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var process = Process.Start(start)!;
        var ready = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("listening on port", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return (process, new Uri($"http://127.0.0.1:{port}/mcp"));
    }

    /// <summary>Processes whose environment carries <paramref name="marker"/> (a stdio server Flotilla started for a test).</summary>
    public static IReadOnlyList<int> ProcessesWith(string marker)
    {
        var found = new List<int>();
        foreach (var dir in System.IO.Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(Path.Combine(dir, "environ")).Contains(marker, StringComparison.Ordinal))
                {
                    found.Add(pid);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}
