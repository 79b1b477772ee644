using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Headers;
using System.Text.Json;
using Flotilla.Fleet.Loading;
using Flotilla.Server.Hosting;
using Flotilla.Testing;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>
/// A real Flotilla server for one test: the fleet YAML written to a temporary data directory, loaded with
/// <see cref="FleetLoader.Parse"/>, served by Kestrel on 127.0.0.1 (a free port), with an agent key for
/// <see cref="Agent"/> and clients that use it.
/// </summary>
internal sealed class GatewayHost : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token-0123456789abcdef-0123";
    public const string Agent = "tester";
    public const string Team = "qa-team";

    private static readonly TimeSpan TraceWait = TimeSpan.FromSeconds(5);

    private readonly FlotillaServerOptions _options;
    private readonly List<HttpClient> _agentClients = [];

    private GatewayHost(FlotillaServer server, FlotillaServerOptions options, string key)
    {
        Server = server;
        _options = options;
        DataDirectory = options.DataDirectory;
        AgentKey = key;
        (Http, Admin) = Clients(server, key);
    }

    public FlotillaServer Server { get; private set; }

    public string DataDirectory { get; }

    /// <summary>A key of <see cref="Agent"/>.</summary>
    public string AgentKey { get; }

    /// <summary>Calls the gateway as <see cref="Agent"/>.</summary>
    public HttpClient Http { get; private set; }

    /// <summary>Calls the admin API with the admin token.</summary>
    public HttpClient Admin { get; private set; }

    /// <summary>
    /// Starts a server for <paramref name="gatewayYaml"/> (the gateway document; an agent <see cref="Agent"/> owned by
    /// <see cref="Team"/> is appended). <paramref name="time"/> drives timeouts, backoff and cooldown.
    /// </summary>
    /// <param name="services">Replaces registrations after Flotilla's own (a failing store, say).</param>
    /// <param name="console">Receives start-up notices and warnings; default: discarded.</param>
    public static async Task<GatewayHost> StartAsync(string gatewayYaml, TimeProvider? time = null,
        Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null, TextWriter? console = null)
    {
        var yaml = WithAgent(gatewayYaml);
        var dataDirectory = Path.Combine(Path.GetTempPath(), "flotilla-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDirectory);
        var fleetPath = Path.Combine(dataDirectory, "fleet.yaml");
        await File.WriteAllTextAsync(fleetPath, yaml);
        var loaded = FleetLoader.Parse(yaml, fleetPath);
        if (!loaded.IsValid)
        {
            throw new InvalidOperationException("The test fleet is invalid:\n" + string.Join("\n", loaded.Errors) + "\n" + yaml);
        }

        var options = new FlotillaServerOptions
        {
            Fleet = loaded.Fleet!,
            FleetYaml = yaml,
            FleetPath = fleetPath,
            Urls = "http://127.0.0.1:0",
            DataDirectory = dataDirectory,
            AdminToken = AdminToken,
            Console = console ?? TextWriter.Null,
            Time = time ?? TimeProvider.System,
            ConfigureServices = services,
        };
        var server = await FlotillaServer.StartAsync(options);
        var key = await server.IssueKeyAsync(Agent);
        return new GatewayHost(server, options, key);
    }

    /// <summary>The fleet a host serves for <paramref name="gatewayYaml"/>: the agent <see cref="Agent"/> of <see cref="Team"/> appended.</summary>
    public static string WithAgent(string gatewayYaml) => gatewayYaml.TrimEnd() + $"\n---\nagent:\n  name: {Agent}\n  owner: {Team}\n";

    /// <summary>
    /// Stops the server and starts a new one on the same data directory, fleet and clock (as after a process restart);
    /// <see cref="Http"/> and <see cref="Admin"/> are replaced, and keys issued before keep working.
    /// </summary>
    public async Task RestartAsync()
    {
        await StopAsync();
        await StartAgainAsync();
    }

    /// <summary>Stops the server as at a process exit (hosted services finish their shutdown work).</summary>
    public async Task StopAsync()
    {
        DisposeClients();
        await Server.DisposeAsync();
    }

    /// <summary>Starts a stopped server again on the same data directory; <paramref name="services"/> replaces the first start's.</summary>
    public async Task StartAgainAsync(Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null)
    {
        Server = await FlotillaServer.StartAsync(services is null ? _options : _options with { ConfigureServices = services });
        (Http, Admin) = Clients(Server, AgentKey);
    }

    /// <summary>A client calling the gateway as <paramref name="agent"/> (declared in the fleet), with a newly issued key.</summary>
    public async Task<HttpClient> ClientForAsync(string agent)
    {
        var client = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await Server.IssueKeyAsync(agent));
        _agentClients.Add(client);
        return client;
    }

    private static (HttpClient Http, HttpClient Admin) Clients(FlotillaServer server, string key)
    {
        var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var admin = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return (http, admin);
    }

    private void DisposeClients()
    {
        Http.Dispose();
        Admin.Dispose();
        foreach (var client in _agentClients)
        {
            client.Dispose();
        }

        _agentClients.Clear();
    }

    /// <summary>The OpenAI .NET SDK pointed at the gateway, without the SDK's own retries (they would hide the gateway's).</summary>
    public OpenAIClientOptions SdkOptions() => new()
    {
        Endpoint = new Uri(Server.Address, "v1"),
        RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
        NetworkTimeout = TimeSpan.FromSeconds(30),
    };

    public ChatClient Chat(string model) => new(model, new ApiKeyCredential(AgentKey), SdkOptions());

    public EmbeddingClient Embeddings(string model) => new(model, new ApiKeyCredential(AgentKey), SdkOptions());

    /// <summary>Posts a chat completions body (JSON text) as <see cref="Agent"/>.</summary>
    public Task<HttpResponseMessage> PostChatAsync(string json, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead) =>
        Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = JsonContent(json) }, completion);

    public static StringContent JsonContent(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// <summary>The trace with <paramref name="id"/>; traces are written in the background, so this waits a little for it.</summary>
    public async Task<JsonElement> TraceAsync(string id)
    {
        var deadline = DateTime.UtcNow + TraceWait;
        while (true)
        {
            using var response = await Admin.GetAsync($"/api/traces/{id}");
            if (response.IsSuccessStatusCode)
            {
                return await ReadJsonAsync(response);
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"trace {id} was not written within {TraceWait.TotalSeconds} s (last answer {(int)response.StatusCode})");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>All traces, newest first, once there are at least <paramref name="atLeast"/>.</summary>
    public async Task<JsonElement[]> TracesAsync(int atLeast)
    {
        var deadline = DateTime.UtcNow + TraceWait;
        while (true)
        {
            var traces = await TracesNowAsync();
            if (traces.Length >= atLeast)
            {
                return traces;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"expected at least {atLeast} traces within {TraceWait.TotalSeconds} s, found {traces.Length}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>
    /// Waits until every alert published so far is stored and its webhook delivery has ended: after this, no post is still
    /// on its way, so a test can count posts exactly. <paramref name="tick"/> moves a fake clock along (retry backoff).
    /// </summary>
    public async Task AlertsSettledAsync(Action? tick = null)
    {
        var alerts = Server.Services.GetRequiredService<AlertDispatcher>();
        var deadline = DateTime.UtcNow + TraceWait;
        while (!alerts.IsSettled)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"alerts were still being stored or delivered after {TraceWait.TotalSeconds} s");
            }

            tick?.Invoke();
            await Task.Delay(10);
        }
    }

    public async Task<JsonElement[]> TracesNowAsync()
    {
        using var response = await Admin.GetAsync("/api/traces?limit=10000");
        response.EnsureSuccessStatusCode();
        return [.. (await ReadJsonAsync(response)).GetProperty("data").EnumerateArray()];
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>The OpenAI error object (<c>error</c>) of an error response.</summary>
    public static async Task<JsonElement> ErrorAsync(HttpResponseMessage response) => (await ReadJsonAsync(response)).GetProperty("error");

    public async ValueTask DisposeAsync()
    {
        DisposeClients();
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold the file for a moment; the OS cleans temp.
        }
    }
}

/// <summary>Fleet documents shared by several tests.</summary>
internal static class Fleets
{
    /// <summary>
    /// Two OpenAI-compatible providers on <paramref name="primary"/> and <paramref name="backup"/>, models <c>model-a</c> and
    /// <c>model-b</c> (priced 1000 and 2000 USD per million tokens in and out, so costs are visible), and the virtual model
    /// <c>smart</c> trying model-a first. Retries are off unless <paramref name="retries"/> says otherwise;
    /// <paramref name="virtualModelOptions"/> continues the virtual model's flow mapping (<c>, ttft_timeout_ms: 300</c>) and
    /// <paramref name="routingOptions"/> is one more line under <c>routing:</c>.
    /// </summary>
    public static string PrimaryAndBackup(FakeUpstream primary, FakeUpstream backup, string retries = "{ attempts: 0 }",
        string virtualModelOptions = "", string routingOptions = "", Uri? primaryUrl = null) => $$"""
        gateway:
          providers:
            - { name: a, type: openai, base_url: "{{primaryUrl ?? primary.BaseUrl}}" }
            - { name: b, type: openai, base_url: "{{backup.BaseUrl}}" }
          models:
            - { name: model-a, provider: a, model: upstream-a, price: { input_per_million: 1000, output_per_million: 2000 } }
            - { name: model-b, provider: b, model: upstream-b, price: { input_per_million: 1000, output_per_million: 2000 } }
          routing:
            virtual_models:
              - { name: smart, targets: [ { model: model-a, priority: 0 }, { model: model-b, priority: 1 } ]{{virtualModelOptions}} }
            retries: {{retries}}
            {{routingOptions}}
        """;
}
