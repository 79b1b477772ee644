using Flotilla.Fleet;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Upstreams;

/// <summary>Where an upstream stands.</summary>
public enum UpstreamState { Connecting, Ready, Down }

/// <summary>
/// One MCP server the gateway reaches: a client session kept open (a stdio server is started and supervised here), its
/// tools, prompts and resources as last listed, and its state. When the session ends or cannot be opened, the server is
/// <see cref="UpstreamState.Down"/> and is retried with backoff (1 s doubling to 30 s); its tools leave the catalogue and
/// come back when it answers again. A stdio server gets only the environment the fleet declares plus PATH, HOME and the
/// like: none of Flotilla's own variables, so no secret is inherited.
/// </summary>
internal sealed partial class McpUpstream : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly CancellationTokenSource _stop = new();
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly Credentials.TokenVault _vault;
    private McpClient? _client;
    private CancellationTokenSource? _session;
    private CancellationTokenSource? _backoff;
    private Task? _loop;

    public McpUpstream(McpServerConfig config, Credentials.TokenVault vault, ILoggerFactory loggers, TimeProvider time)
    {
        Config = config;
        _vault = vault;
        _loggers = loggers;
        _logger = loggers.CreateLogger<McpUpstream>();
        _time = time;
    }

    /// <summary>Ends a backoff wait early (a per-user server's first token was just stored).</summary>
    public void RetryNow() => _backoff?.Cancel();

    public McpServerConfig Config { get; }

    public string Name => Config.Name;

    /// <summary>This server as <paramref name="snapshot"/> declares it: grants, trust and read-only lists apply from an apply
    /// on, without a reconnect (the session keeps the definition it was opened with).</summary>
    public McpServerConfig ConfigIn(FleetSnapshot snapshot) => snapshot.Config.FindMcpServer(Name) ?? Config;

    public UpstreamState State { get; private set; } = UpstreamState.Connecting;

    /// <summary>Why the server is down, for errors and the operator (never a credential).</summary>
    public string? Failure { get; private set; }

    public IReadOnlyList<Tool> Tools { get; private set; } = [];

    public IReadOnlyList<Prompt> Prompts { get; private set; } = [];

    public IReadOnlyList<Resource> Resources { get; private set; } = [];

    /// <summary>Raised when the state or any list changes.</summary>
    public event Action<McpUpstream>? Changed;

    public void Start() => _loop ??= Task.Run(() => RunAsync(_stop.Token));

    /// <summary>The open session, or an error naming this server.</summary>
    public McpClient Client => State == UpstreamState.Ready && _client is { } client
        ? client
        : throw new UpstreamUnavailableException(Name, Failure ?? "it is still connecting");

    /// <summary>A request failed in a way that means the session is gone (connection refused, process exited): reconnect.</summary>
    public void ReportBroken(Exception error)
    {
        if (State == UpstreamState.Ready)
        {
            LogBroken(_logger, Name, error.Message);
            Failure = Describe(error);
            State = UpstreamState.Down;
            Changed?.Invoke(this);
            _session?.Cancel();
        }
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!stop.IsCancellationRequested)
        {
            using var session = CancellationTokenSource.CreateLinkedTokenSource(stop);
            _session = session;
            try
            {
                await using var client = await ConnectAsync(stop);
                _client = client;
                await RefreshAsync(client, stop);
                Failure = null;
                State = UpstreamState.Ready;
                backoff = TimeSpan.FromSeconds(1);
                LogReady(_logger, Name, Tools.Count);
                Changed?.Invoke(this);
                await Task.WhenAny(client.Completion, Task.Delay(Timeout.Infinite, session.Token));
                if (!stop.IsCancellationRequested && State == UpstreamState.Ready)
                {
                    Failure = "the session ended";
                    LogBroken(_logger, Name, Failure);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                Failure = Describe(e);
                LogDown(_logger, Name, Failure, backoff.TotalSeconds);
            }
            finally
            {
                _client = null;
            }

            if (stop.IsCancellationRequested)
            {
                break;
            }

            State = UpstreamState.Down;
            Tools = [];
            Prompts = [];
            Resources = [];
            Changed?.Invoke(this);
            using (var wait = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                _backoff = wait;
                try
                {
                    await Task.Delay(backoff, _time, wait.Token);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    // Retry now.
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                finally
                {
                    _backoff = null;
                }
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    private async Task<McpClient> ConnectAsync(CancellationToken stop)
    {
        string? listAs = null;
        if (Config.Auth.Type == McpAuthType.PerUser)
        {
            // The tool list is read with a stored user's token (the most recent); every call uses its caller's own.
            var any = await _vault.AnyAsync(Name, stop)
                ?? throw new InvalidOperationException($"auth per_user: no user has a token for it yet; store one with PUT /api/mcp/tokens/{Name}/USER");
            listAs = any.Token;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(Config.Timeout);
        var options = new McpClientOptions
        {
            ClientInfo = new Implementation { Name = "flotilla", Version = typeof(McpUpstream).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" },
            InitializationTimeout = Config.Timeout,
        };
        options.Handlers.NotificationHandlers =
        [
            new(NotificationMethods.ToolListChangedNotification, (_, ct) => RefreshSoonAsync(ct)),
            new(NotificationMethods.PromptListChangedNotification, (_, ct) => RefreshSoonAsync(ct)),
            new(NotificationMethods.ResourceListChangedNotification, (_, ct) => RefreshSoonAsync(ct)),
        ];
        try
        {
            return await McpClient.CreateAsync(CreateTransport(listAs), options, _loggers, timeout.Token);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer to initialize within {Config.Timeout.TotalSeconds:0.#} s");
        }
    }

    private IClientTransport CreateTransport(string? userToken)
    {
        if (Config.Transport == McpTransport.Stdio)
        {
            var environment = StdioClientTransportOptions.GetDefaultEnvironmentVariables();
            foreach (var (name, value) in Config.Env)
            {
                environment[name] = value.Resolve();
            }

            return new StdioClientTransport(new StdioClientTransportOptions
            {
                Name = Name,
                Command = Config.Command[0],
                Arguments = [.. Config.Command.Skip(1)],
                InheritEnvironmentVariables = false,
                EnvironmentVariables = environment,
                ShutdownTimeout = TimeSpan.FromSeconds(2),
            }, _loggers);
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var auth = Config.Auth;
        if (auth.Type is McpAuthType.Bearer or McpAuthType.Header)
        {
            var secret = auth.Token?.Resolve();
            if (string.IsNullOrEmpty(secret))
            {
                throw new InvalidOperationException($"its credential {auth.Token} is not set in Flotilla's environment");
            }

            headers[auth.Type == McpAuthType.Bearer ? "Authorization" : auth.HeaderName!] = auth.Type == McpAuthType.Bearer ? "Bearer " + secret : secret;
        }
        else if (userToken is not null)
        {
            headers["Authorization"] = "Bearer " + userToken;
        }

        return HttpTransport(Config, headers, _loggers);
    }

    /// <summary>A streamable-HTTP transport to <paramref name="server"/> presenting <paramref name="headers"/>.</summary>
    internal static HttpClientTransport HttpTransport(McpServerConfig server, Dictionary<string, string> headers, ILoggerFactory loggers) =>
        new(new HttpClientTransportOptions
        {
            Name = server.Name,
            Endpoint = server.Url!,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = headers,
            ConnectionTimeout = server.Timeout,
        }, loggers);

    private int _refreshing;

    /// <summary>A list_changed notification: list again off the notification's thread, once for a burst.</summary>
    private ValueTask RefreshSoonAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _refreshing, 1) == 0)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    if (_client is { } client)
                    {
                        await RefreshAsync(client, _stop.Token);
                        Changed?.Invoke(this);
                    }
                }
                catch (Exception e)
                {
                    LogRefreshFailed(_logger, Name, e.Message);
                }
                finally
                {
                    Volatile.Write(ref _refreshing, 0);
                }
            }, CancellationToken.None);
        }

        return ValueTask.CompletedTask;
    }

    private async Task RefreshAsync(McpClient client, CancellationToken stop)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
        timeout.CancelAfter(Config.Timeout);
        var capabilities = client.ServerCapabilities;
        Tools = capabilities.Tools is null ? [] : [.. (await client.ListToolsAsync(cancellationToken: timeout.Token)).Select(t => t.ProtocolTool)];
        Prompts = capabilities.Prompts is null ? [] : [.. (await client.ListPromptsAsync(cancellationToken: timeout.Token)).Select(p => p.ProtocolPrompt)];
        Resources = capabilities.Resources is null ? [] : [.. (await client.ListResourcesAsync(cancellationToken: timeout.Token)).Select(r => r.ProtocolResource)];
    }

    /// <summary>An error's message for operators and callers: the exception's own words, bounded and made safe.</summary>
    private static string Describe(Exception e) => DisplayText.Safe(e is McpException or TimeoutException or InvalidOperationException or HttpRequestException or IOException or Credentials.TokenVaultException
        ? e.Message : $"{e.GetType().Name}: {e.Message}", 300);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is { } loop)
        {
            await loop.ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "mcp server {Server} is ready ({Tools} tools)")]
    private static partial void LogReady(ILogger logger, string server, int tools);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mcp server {Server} is down: {Reason}; retrying in {Seconds} s")]
    private static partial void LogDown(ILogger logger, string server, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mcp server {Server} stopped answering: {Reason}; reconnecting")]
    private static partial void LogBroken(ILogger logger, string server, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mcp server {Server}: listing after list_changed failed: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string server, string reason);
}

/// <summary>A call needed a server that is down or still connecting.</summary>
public sealed class UpstreamUnavailableException(string server, string reason)
    : Exception($"mcp server '{server}' is unavailable: {reason}")
{
    public string Server { get; } = server;
}
