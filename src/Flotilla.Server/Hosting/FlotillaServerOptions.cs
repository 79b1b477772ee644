using Flotilla.Fleet;

namespace Flotilla.Server.Hosting;

/// <summary>How to start the server.</summary>
public sealed record FlotillaServerOptions
{
    /// <summary>The validated fleet.</summary>
    public required FleetConfig Fleet { get; init; }

    /// <summary>
    /// The YAML <see cref="Fleet"/> was loaded from: recorded as a fleet revision at start, shown by <c>GET /api/fleet</c>,
    /// and what <c>plan</c> compares against. Default: none (plans then list everything as new).
    /// </summary>
    public string? FleetYaml { get; init; }

    /// <summary>Where the fleet came from, for messages.</summary>
    public string? FleetPath { get; init; }

    /// <summary>Listen address. Default <c>http://127.0.0.1:8080</c>; port 0 picks a free port.</summary>
    public string Urls { get; init; } = "http://127.0.0.1:8080";

    /// <summary>Data directory (SQLite file, generated admin token). Default <c>./.flotilla</c>.</summary>
    public string DataDirectory { get; init; } = ".flotilla";

    /// <summary>Fixes the admin token; otherwise <c>FLOTILLA_ADMIN_TOKEN</c>, otherwise a generated one stored in the data directory.</summary>
    public string? AdminToken { get; init; }

    /// <summary>Clock for timeouts, backoff and cooldown; tests pass a fake one.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where start-up notices (generated token, starter key) are written. Default: standard output.</summary>
    public TextWriter? Console { get; init; }

    /// <summary>
    /// Runs after Flotilla's own service registrations, so an embedder or a test can replace one (a store, say).
    /// Default: none.
    /// </summary>
    public Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? ConfigureServices { get; init; }

    /// <summary>Minimum log level for the console logger. Default Warning, so the hot path does not log.</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Warning;
}
