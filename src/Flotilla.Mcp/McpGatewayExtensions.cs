using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using ModelContextProtocol;
using Flotilla.Mcp.Approvals;
using Flotilla.Mcp.Calls;
using Flotilla.Mcp.Idempotency;
using Flotilla.Mcp.Endpoint;
using Flotilla.Mcp.Upstreams;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.AspNetCore;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Flotilla.Mcp;

/// <summary>Registers and maps the MCP gateway (<c>/mcp</c>).</summary>
public static class McpGatewayExtensions
{
    public const string Path = "/mcp";

    /// <summary>The gateway's services: upstream connections (started with the host), the call pipeline and the MCP server.</summary>
    public static IServiceCollection AddMcpGateway(this IServiceCollection services)
    {
        services.AddHttpContextAccessor();
        // The SDK logs every error a handler answers with as a failure; a refused call is the gateway working, and the
        // pipeline logs what is really unexpected itself.
        // The SDK client warns each time it probes a server for the 2026-07-28 revision and falls back; upstream trouble
        // that matters is logged by McpUpstream itself.
        services.AddLogging(logging => logging
            .AddFilter("ModelContextProtocol.Server.McpServer", LogLevel.None)
            .AddFilter("ModelContextProtocol.Client", LogLevel.Error));
        services.AddSingleton<Credentials.TokenVault>();
        services.AddSingleton<Credentials.PerUserSessions>();
        services.AddSingleton<McpUpstreams>();
        services.AddHostedService(sp => sp.GetRequiredService<McpUpstreams>());
        services.AddSingleton<ToolCallPipeline>();
        services.AddSingleton<ApprovalGate>();
        services.AddSingleton(sp => new Grants.ArtifactDirectory(sp.GetRequiredService<LiveFleet>(), sp.GetRequiredService<Flotilla.Storage.Traces.ITraceStore>(), sp.GetRequiredService<McpUpstreams>()));
        services.AddSingleton(sp => new McpStatus(sp.GetRequiredService<McpUpstreams>()));
        services.AddSingleton<IdempotentCalls>();
        services.AddHostedService<McpHousekeeping>();
        services.AddSingleton<McpCatalogHandlers>();
        services.AddSingleton(sp => new GovernedToolCalls(sp.GetRequiredService<McpCatalogHandlers>(), sp.GetRequiredService<ToolCallPipeline>()));
        services.AddSingleton<McpSessions>();
        services.AddMcpServer(options =>
            {
                options.ServerInfo = new Implementation { Name = "flotilla", Title = "Flotilla MCP gateway", Version = typeof(McpGatewayExtensions).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" };
                options.Capabilities = new ServerCapabilities
                {
                    Tools = new ToolsCapability { ListChanged = true },
                    Prompts = new PromptsCapability { ListChanged = true },
                    Resources = new ResourcesCapability { ListChanged = true },
                };
                // Parameters the SDK cannot read (a tools/call without a name, arguments that are not an object, a broken
                // surrogate) are the caller's mistake: say so with -32602 and what was wrong, not "An error occurred".
                options.Filters.Message.IncomingFilters.Add(static next => async (context, cancellationToken) =>
                {
                    try
                    {
                        await next(context, cancellationToken);
                    }
                    catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException && context.JsonRpcMessage is JsonRpcRequest request)
                    {
                        throw new McpProtocolException($"invalid params for {Fleet.DisplayText.Safe(request.Method, 64)}: {Fleet.DisplayText.Safe(e.Message, 300)}", McpErrorCode.InvalidParams);
                    }
                });
                // 2026-07-28 clients have no session: they hold a subscriptions/listen request open for list_changed.
                options.Handlers.SubscriptionsListenHandler = static (request, cancellationToken) =>
                    request.Services!.GetRequiredService<McpSessions>().ListenAsync(request, cancellationToken);
            })
            .WithHttpTransport(options =>
            {
                // Sessions for clients that do the initialize handshake (they get list_changed); stateless for 2026-07-28 clients.
                options.SessionMode = HttpServerSessionMode.StatefulForInitializeClients;
#pragma warning disable MCPEXP002 // The only hook that hands over each session's server, which list_changed needs.
                options.RunSessionHandler = static (context, server, cancellationToken) =>
                    context.RequestServices.GetRequiredService<McpSessions>().RunAsync(server, cancellationToken);
#pragma warning restore MCPEXP002
            })
            .WithListToolsHandler((request, _) => ValueTask.FromResult(Handlers(request).ListTools(request.User)))
            .WithCallToolHandler((request, cancellationToken) =>
                request.Services!.GetRequiredService<ToolCallPipeline>().CallAsync(request.User, request.Params!, cancellationToken))
            .WithListPromptsHandler((request, _) => ValueTask.FromResult(Handlers(request).ListPrompts(request.User)))
            .WithGetPromptHandler((request, cancellationToken) => Handlers(request).GetPromptAsync(request.User, request.Params!, cancellationToken))
            .WithListResourcesHandler((request, _) => ValueTask.FromResult(Handlers(request).ListResources(request.User)))
            .WithReadResourceHandler((request, cancellationToken) => Handlers(request).ReadResourceAsync(request.User, request.Params!, cancellationToken));
        return services;
    }

    private static McpCatalogHandlers Handlers(MessageContext request) => request.Services!.GetRequiredService<McpCatalogHandlers>();

    /// <summary>Maps <c>/mcp</c> behind inbound auth, and the RFC 9728 metadata that a 401 points to.</summary>
    public static IEndpointRouteBuilder MapMcpGateway(this WebApplication app)
    {
        app.UseWhen(context => context.Request.Path.StartsWithSegments(Path), branch => branch.UseMiddleware<McpInbound>());
        app.MapGet(McpInbound.MetadataPath, McpInbound.Metadata);
        app.MapGet(McpInbound.MetadataPath + Path, McpInbound.Metadata);
        app.MapMcp(Path);
        return app;
    }
}

/// <summary>
/// Who hears of a change in the catalogue: open sessions (clients that did the <c>initialize</c> handshake) get
/// <c>notifications/tools/list_changed</c> (and the prompt and resource ones) on their session; 2026-07-28 clients, which
/// have no session, get them on the <c>subscriptions/listen</c> request they hold open, tagged with its id.
/// </summary>
internal sealed partial class McpSessions
{
    private readonly ConcurrentDictionary<McpServer, byte> _open = new();
    private readonly McpUpstreams _upstreams;

    private readonly ILogger<McpSessions> _logger;

    public McpSessions(McpUpstreams upstreams, ILogger<McpSessions> logger)
    {
        _upstreams = upstreams;
        _logger = logger;
        upstreams.CatalogChanged += Notify;
    }

    /// <summary>Holds a <c>subscriptions/listen</c> request open, acknowledging what it will deliver, until the client leaves.</summary>
    public async ValueTask<EmptyResult> ListenAsync(RequestContext<SubscriptionsListenRequestParams> request, CancellationToken cancellationToken)
    {
        var asked = request.Params?.Notifications;
        var granted = new SubscriptionsListenNotifications
        {
            ToolsListChanged = asked?.ToolsListChanged == true ? true : null,
            PromptsListChanged = asked?.PromptsListChanged == true ? true : null,
            ResourcesListChanged = asked?.ResourcesListChanged == true ? true : null,
        };
        var id = request.JsonRpcRequest.Id;
        var server = request.Server;

        Task SendAsync(string method, JsonObject? parameters, CancellationToken ct)
        {
            parameters ??= [];
            parameters["_meta"] = new JsonObject { [MetaKeys.SubscriptionId] = id.Id is long n ? JsonValue.Create(n) : JsonValue.Create(id.Id?.ToString()) };
            // The request's server is bound to the request's own stream: what it sends goes back on it.
            return server.SendMessageAsync(new JsonRpcNotification { Method = method, Params = parameters }, ct);
        }

        var changes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void OnChange() => changes.Writer.TryWrite(true);
        _upstreams.CatalogChanged += OnChange;
        try
        {
            await SendAsync(NotificationMethods.SubscriptionsAcknowledgedNotification,
                JsonSerializer.SerializeToNode(new SubscriptionsAcknowledgedNotificationParams { Notifications = granted }, McpJsonUtilities.DefaultOptions)!.AsObject(),
                cancellationToken);
            while (await changes.Reader.WaitToReadAsync(cancellationToken))
            {
                changes.Reader.TryRead(out _);
                foreach (var (wanted, method) in new[]
                {
                    (granted.ToolsListChanged, NotificationMethods.ToolListChangedNotification),
                    (granted.PromptsListChanged, NotificationMethods.PromptListChangedNotification),
                    (granted.ResourcesListChanged, NotificationMethods.ResourceListChangedNotification),
                })
                {
                    if (wanted == true)
                    {
                        await SendAsync(method, null, cancellationToken);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client left.
        }
        catch (Exception e)
        {
            LogListenFailed(_logger, e);
            throw;
        }
        finally
        {
            _upstreams.CatalogChanged -= OnChange;
        }

        return new EmptyResult();
    }

    public int Count => _open.Count;

    public async Task RunAsync(McpServer server, CancellationToken cancellationToken)
    {
        _open.TryAdd(server, 0);
        try
        {
            await server.RunAsync(cancellationToken);
        }
        finally
        {
            _open.TryRemove(server, out _);
        }
    }

    private void Notify()
    {
        foreach (var server in _open.Keys)
        {
            _ = SendAsync(server);
        }
    }

    private static async Task SendAsync(McpServer server)
    {
        try
        {
            await server.SendNotificationAsync(NotificationMethods.ToolListChangedNotification);
            await server.SendNotificationAsync(NotificationMethods.PromptListChangedNotification);
            await server.SendNotificationAsync(NotificationMethods.ResourceListChangedNotification);
        }
        catch (Exception)
        {
            // A session that has gone away is removed when its run ends; nothing to tell it.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "a subscriptions/listen stream failed")]
    private static partial void LogListenFailed(ILogger logger, Exception error);
}
