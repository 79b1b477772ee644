using Flotilla.Gateway;
using Flotilla.Gateway.Endpoints;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Identity;
using Flotilla.Server.Admin;
using Flotilla.Storage.Alerts;
using Flotilla.Storage.Keys;
using Flotilla.Storage.Sqlite;
using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
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

    public static async Task<FlotillaServer> StartAsync(FlotillaServerOptions options, CancellationToken cancellationToken = default)
    {
        var console = options.Console ?? Console.Out;
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        var database = new SqliteDatabase(dataDirectory);
        var token = AdminToken.Resolve(options.AdminToken, dataDirectory);

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
        builder.Services.AddSingleton<ITraceStore, SqliteTraceStore>();
        builder.Services.AddSingleton<IAgentKeyStore, SqliteAgentKeyStore>();
        builder.Services.AddSingleton<IUsageStore, SqliteUsageStore>();
        builder.Services.AddSingleton<IAlertStore, SqliteAlertStore>();
        builder.Services.AddAiGateway(options.Fleet);

        var app = builder.Build();
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
        app.MapGet("/readyz", async (ITraceStore traces, CancellationToken ct) =>
        {
            await traces.CountAsync(ct);
            return Results.Text("ready\n");
        });
        app.MapAiGateway();
        app.MapAdminApi();

        var keys = app.Services.GetRequiredService<AgentKeyRing>();
        await keys.LoadAsync(cancellationToken);
        // Spend in the current budget windows comes back from the usage buckets: a restart forgets nothing.
        await Gateway.Budgets.BudgetRestore.RestoreAsync(app.Services.GetRequiredService<FleetState>().Current.Budgets,
            app.Services.GetRequiredService<IUsageStore>(), app.Services.GetRequiredService<IAlertStore>(), options.Time, cancellationToken);
        await app.StartAsync(cancellationToken);

        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
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
