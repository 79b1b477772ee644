using Flotilla.Mcp;
using Flotilla.Gateway;
using Flotilla.Gateway.Endpoints;
using Flotilla.Gateway.Errors;
using Flotilla.Fleet;
using Flotilla.Gateway.Telemetry;
using Flotilla.Gateway.Traces;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Flotilla.Server.Fleet;
using Flotilla.Storage.Fleet;
using Flotilla.Server.Admin;
using Flotilla.Storage.Alerts;
using Flotilla.Storage.Keys;
using Flotilla.Storage.Mcp;
using Flotilla.Storage.Responses;
using Flotilla.Storage.Sqlite;
using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
using Microsoft.Data.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Server.Hosting;

/// <summary>One Flotilla process: the AI gateway, the admin API and health endpoints on one Kestrel host.</summary>
public sealed class FlotillaServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FlotillaServer(WebApplication app, Uri address, AdminToken token)
    {
        _app = app;
        Address = address;
        Token = token;
    }

    /// <summary>The address actually bound (useful with port 0).</summary>
    public Uri Address { get; }

    public AdminToken Token { get; }

    public string AdminTokenValue => Token.Value;

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Starts the server. Throws <see cref="StartupException"/> (one line that says what to do) when it cannot: an unusable
    /// data directory, a missing or too short admin token, a spill journal the store will not take, an address in use.
    /// </summary>
    public static async Task<FlotillaServer> StartAsync(FlotillaServerOptions options, CancellationToken cancellationToken = default)
    {
        var console = options.Console ?? Console.Out;
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        var warnings = new List<string>(DataDirectory.Prepare(dataDirectory));
        SqliteDatabase database;
        try
        {
            database = new SqliteDatabase(dataDirectory);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            throw new StartupException($"cannot open the database in '{dataDirectory}': {e.Message} Check the disk and the directory's permissions, or pass --data with another directory.", e);
        }

        var token = AdminToken.Resolve(options.AdminToken, dataDirectory);
        warnings.AddRange(UnenforcedKeys.In(options.Fleet));

        // Content root away from the working directory (which holds the default data directory): the host would
        // otherwise watch it for configuration changes and pay for every SQLite write. Flotilla has no appsettings to reload.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            EnvironmentName = Environments.Production,
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The gateway checks body size itself (with an OpenAI error); Kestrel's cap is a backstop a little above it.
            kestrel.Limits.MaxRequestBodySize = options.Fleet.Gateway.Limits.MaxRequestBodyBytes + 1024;
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(options.LogLevel);

        builder.Services.AddSingleton(options.Time);
        builder.Services.AddSingleton(database);
        builder.Services.AddSingleton(token);
        builder.Services.AddSingleton(new TraceJournal(Path.Combine(dataDirectory, TraceJournal.FileName)));
        builder.Services.AddSingleton<ITraceStore, SqliteTraceStore>();
        builder.Services.AddSingleton<IAgentKeyStore, SqliteAgentKeyStore>();
        builder.Services.AddSingleton<IUsageStore, SqliteUsageStore>();
        builder.Services.AddSingleton<IAlertStore, SqliteAlertStore>();
        builder.Services.AddSingleton<IFleetRevisionStore, SqliteFleetRevisionStore>();
        builder.Services.AddSingleton<IApprovalStore, SqliteApprovalStore>();
        builder.Services.AddSingleton<IIdempotencyStore, SqliteIdempotencyStore>();
        builder.Services.AddSingleton<IMcpTokenStore, SqliteMcpTokenStore>();
        builder.Services.AddSingleton<IResponseStore, SqliteResponseStore>();
        builder.Services.AddSingleton<Flotilla.Storage.Runs.IRunStore, SqliteRunStore>();
        builder.Services.AddSingleton<FleetApplier>();
        builder.Services.AddAiGateway(options.Fleet);
        builder.Services.AddMcpGateway();
        builder.Services.AddSingleton(new Flotilla.Harness.Runs.HarnessOptions(options.FleetPath is { } fleetPath ? Path.GetDirectoryName(Path.GetFullPath(fleetPath)) : null));
        builder.Services.AddSingleton<Flotilla.Harness.Runs.RunEngine>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Flotilla.Harness.Runs.RunEngine>());
        builder.Services.AddSingleton<Flotilla.Harness.Triggers.RunScheduler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Flotilla.Harness.Triggers.RunScheduler>());
        var telemetry = AddTelemetry(builder.Services, options.Fleet.Gateway.Telemetry);
        options.ConfigureServices?.Invoke(builder.Services);

        var app = builder.Build();
        app.Services.GetRequiredService<GatewayMetrics>().Observe(app.Services.GetRequiredService<LiveFleet>(), app.Services.GetRequiredService<TraceWriter>());
        app.Use(async (context, next) =>
        {
            // Last line of defence: whatever escapes a handler becomes a JSON error, never a crash or an HTML page.
            try
            {
                await next(context);
            }
            catch (BadHttpRequestException e) when (!context.Response.HasStarted)
            {
                await ErrorWriter.WriteAsync(context, new GatewayException(e.StatusCode, "invalid_request_error", "bad_request", e.Message));
            }
        });
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        app.MapGet("/readyz", (TraceWriter traces) => traces.Failure is { } failure
            ? Results.Text($"not ready: traces cannot be stored since {failure.Since:u} ({failure.Error}); " +
                $"{traces.Journalled} in the spill journal, {failure.Held} held in memory\n", statusCode: 503)
            : Results.Text("ready\n"));
        app.MapAiGateway();
        app.MapMcpGateway();
        Flotilla.Harness.Triggers.WebhookTrigger.MapHarnessHooks(app);
        app.MapAdminApi();
        if (telemetry.Metrics)
        {
            app.MapPrometheusScrapingEndpoint("/metrics");
        }

        try
        {
            var keys = app.Services.GetRequiredService<AgentKeyRing>();
            await keys.LoadAsync(cancellationToken);
            // Traces an earlier run could not store come back first, then spend in the current budget windows is restored
            // from the usage buckets: a restart forgets nothing.
            await app.Services.GetRequiredService<TraceWriter>().ReplayJournalAtStartAsync(cancellationToken);
            await app.Services.GetRequiredService<FleetApplier>().InitializeAsync(options.FleetYaml, cancellationToken);
            await BudgetRestore.RestoreAsync(app.Services.GetRequiredService<LiveFleet>().Current.Budgets,
                app.Services.GetRequiredService<IUsageStore>(), app.Services.GetRequiredService<IAlertStore>(), options.Time, cancellationToken);
            await app.StartAsync(cancellationToken);

            var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            foreach (var warning in warnings)
            {
                await console.WriteLineAsync("warning: " + warning);
            }

            if (token.Generated)
            {
                await console.WriteLineAsync($"Admin token (generated, shown once; also saved to {Path.Combine(dataDirectory, AdminToken.FileName)}):");
                await console.WriteLineAsync($"  {token.Value}");
            }

            if (keys.IsEmpty && options.Fleet.Agents.Count > 0)
            {
                var agent = options.Fleet.Agents[0].Name;
                var (key, _) = await keys.IssueAsync(agent, cancellationToken);
                await console.WriteLineAsync($"Agent key for '{agent}' (shown once; issue more with POST /api/keys or ./flotilla keys create {agent}):");
                await console.WriteLineAsync($"  {key}");
            }

            return new FlotillaServer(app, address, token);
        }
        catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
        {
            await app.DisposeAsync();
            var reason = e is IOException { InnerException: System.Net.Sockets.SocketException } || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase)
                ? $"cannot listen on {options.Urls}: {e.Message} Stop the other process or pass --urls with a free address."
                : $"cannot start: {e.Message} Check the data directory '{dataDirectory}' and the disk.";
            throw new StartupException(reason, e);
        }
    }

    /// <summary>
    /// Prometheus metrics (unless <c>telemetry.metrics: false</c>) and, when an endpoint is configured (the fleet's
    /// <c>telemetry.otlp_endpoint</c>, else <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>), spans over OTLP/HTTP protobuf.
    /// </summary>
    private static (bool Metrics, Uri? Otlp) AddTelemetry(IServiceCollection services, TelemetryConfig config)
    {
        var otlp = config.OtlpEndpoint
            ?? (Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } text && Uri.TryCreate(text, UriKind.Absolute, out var fromEnvironment)
                ? fromEnvironment
                : null);
        if (!config.Metrics && otlp is null)
        {
            return (false, null);
        }

        var builder = services.AddOpenTelemetry().ConfigureResource(resource => resource.AddService("flotilla"));
        if (config.Metrics)
        {
            builder.WithMetrics(metrics => metrics.AddMeter(GatewayMetrics.MeterName).AddPrometheusExporter());
        }

        if (otlp is not null)
        {
            var endpoint = new Uri(otlp.ToString().TrimEnd('/') + "/v1/traces");
            builder.WithTracing(tracing => tracing.AddSource(CallTracing.SourceName).AddOtlpExporter(exporter =>
            {
                exporter.Endpoint = endpoint;
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                // Spans leave in batches off the request path; a second's delay keeps them close to real time.
                exporter.BatchExportProcessorOptions.ScheduledDelayMilliseconds = 1000;
            }));
        }

        return (config.Metrics, otlp);
    }

    /// <summary>Plans and applies fleet files on this server (the admin API and SIGHUP use it).</summary>
    public FleetApplier Fleet => _app.Services.GetRequiredService<FleetApplier>();

    /// <summary>Issues an agent key directly (tests, first start).</summary>
    public async Task<string> IssueKeyAsync(string agent, CancellationToken cancellationToken = default) =>
        (await _app.Services.GetRequiredService<AgentKeyRing>().IssueAsync(agent, cancellationToken)).Key;

    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
