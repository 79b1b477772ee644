using System.Net;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>Fleets, requests and admin reads shared by the governance tests.</summary>
internal static class GovernanceFleet
{
    /// <summary>A second agent of <see cref="GatewayHost.Team"/>.</summary>
    public const string Peer = "peer";

    /// <summary>An agent of another team.</summary>
    public const string Outsider = "outsider";

    public const string OtherTeam = "other-team";

    /// <summary>What one call to <c>pricey</c> costs: the fake reports 12 tokens in and 7 out, at $0.50 a token.</summary>
    public const decimal PriceyCall = 9.5m;

    /// <summary>
    /// One OpenAI-compatible upstream and two models on it: <c>pricey</c> ($500,000 per million tokens in and out, so a
    /// call costs <see cref="PriceyCall"/>) and <c>cheap</c> ($1,000 in and $2,000 out per million: $0.026 a call).
    /// <paramref name="policy"/> is more of the gateway block (indented by two spaces); the agents <see cref="Peer"/> and
    /// <see cref="Outsider"/> are declared besides <see cref="GatewayHost.Agent"/>. Retries are off.
    /// </summary>
    public static string Priced(FakeUpstream upstream, string policy) =>
        $$"""
        gateway:
          providers:
            - { name: up, type: openai, base_url: "{{upstream.BaseUrl}}" }
          models:
            - { name: pricey, provider: up, model: upstream-pricey, price: { input_per_million: 500000, output_per_million: 500000 } }
            - { name: cheap, provider: up, model: upstream-cheap, price: { input_per_million: 1000, output_per_million: 2000 } }
          routing:
            retries: { attempts: 0 }
        {{Indent(policy)}}
        ---
        agent:
          name: {{Peer}}
          owner: {{GatewayHost.Team}}
        ---
        agent:
          name: {{Outsider}}
          owner: {{OtherTeam}}
        """;

    /// <summary>
    /// A chat body. With <c>max_tokens: 10</c> a call to <c>pricey</c> reserves about $9 (its estimated input and
    /// <c>max_tokens</c> at the price), a little under what it then costs.
    /// </summary>
    public static string Chat(string model = "pricey", string content = "loop", bool stream = false, string extra = "", int maxTokens = 10) =>
        $$"""{"model":"{{model}}","max_tokens":{{maxTokens}},{{(stream ? "\"stream\":true," : "")}}"messages":[{"role":"user","content":"{{content}}"}]{{extra}}}""";

    public static Task<HttpResponseMessage> PostChatAsync(this HttpClient client, string body, string? metadata = null,
        string? cacheControl = null, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = GatewayHost.JsonContent(body) };
        if (metadata is not null)
        {
            request.Headers.Add("X-Flotilla-Metadata", metadata);
        }

        if (cacheControl is not null)
        {
            request.Headers.Add("X-Flotilla-Cache-Control", cacheControl);
        }

        return client.SendAsync(request, cancellationToken);
    }

    /// <summary>Awaits the call and returns its response, failing with the body when the status is not <paramref name="expected"/>.</summary>
    public static async Task<HttpResponseMessage> ExpectAsync(this Task<HttpResponseMessage> call, HttpStatusCode expected)
    {
        var response = await call;
        if (response.StatusCode != expected)
        {
            var body = await response.Content.ReadAsStringAsync();
            response.Dispose();
            throw new ShouldAssertException($"expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        }

        return response;
    }

    public static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : "";

    /// <summary>The answer's message text.</summary>
    public static async Task<string> ContentAsync(HttpResponseMessage response) =>
        (await GatewayHost.ReadJsonAsync(response)).GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

    /// <summary>GET /api/budgets: accounts by "applies_per:key".</summary>
    public static async Task<Dictionary<string, JsonElement>> BudgetsAsync(this GatewayHost host)
    {
        using var response = await host.Admin.GetAsync("/api/budgets");
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray()
            .ToDictionary(b => $"{b.GetProperty("applies_per").GetString()}:{b.GetProperty("key").GetString()}");
    }

    public static async Task<decimal> SpentAsync(this GatewayHost host, string account) =>
        (await host.BudgetsAsync())[account].GetProperty("spent_usd").GetDecimal();

    /// <summary>GET /api/alerts, polled (alerts are stored in the background) until <paramref name="done"/> holds.</summary>
    public static async Task<JsonElement[]> AlertsAsync(this GatewayHost host, Func<JsonElement[], bool> done, Action? tick = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            using var response = await host.Admin.GetAsync("/api/alerts?limit=1000");
            response.StatusCode.ShouldBe(HttpStatusCode.OK);
            JsonElement[] alerts = [.. (await GatewayHost.ReadJsonAsync(response)).GetProperty("data").EnumerateArray()];
            if (done(alerts))
            {
                return alerts;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the alerts did not arrive in time; found: " + string.Join(" | ", alerts.Select(a => a.GetRawText())));
            }

            tick?.Invoke();
            await Task.Delay(20);
        }
    }

    /// <summary>Budget threshold alerts' thresholds, lowest first.</summary>
    public static int[] Thresholds(IEnumerable<JsonElement> alerts) =>
        [.. alerts.Where(a => a.GetProperty("kind").GetString() == "budget_threshold").Select(a => a.GetProperty("threshold").GetInt32()).Order()];

    private static string Indent(string text) =>
        string.Join("\n", text.Trim('\n').Split('\n').Select(line => "  " + line));
}
