using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Governance.Fleet;
using Flotilla.Harness.Runs;
using Flotilla.Storage.Runs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Flotilla.Harness.Triggers;

/// <summary>
/// <c>POST /hooks/agents/{name}</c>: starts a run of an agent whose trigger says <c>webhook: true</c>. The caller signs the
/// raw body with the agent's <c>webhook_secret</c>: <c>X-Flotilla-Signature: sha256=HEX(HMAC-SHA256(secret, body))</c>.
/// The body is the run's input: a JSON object's <c>input</c>, or the text itself. Unsigned, badly signed, unknown and
/// not-webhook agents all get the same 404, so the URL says nothing about which agents exist.
/// </summary>
public static class WebhookTrigger
{
    public const string SignatureHeader = "X-Flotilla-Signature";
    private const int MaxBody = 1024 * 1024;

    public static IEndpointRouteBuilder MapHarnessHooks(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/hooks/agents/{name}", HandleAsync);
        return endpoints;
    }

    private static async Task<IResult> HandleAsync(string name, HttpContext context, LiveFleet fleet, RunEngine engine, IRunStore store)
    {
        var agent = fleet.Current.Config.Agents.FirstOrDefault(a => a.Name == name);
        var secret = agent?.Trigger is { Webhook: true, WebhookSecret: { } reference } ? reference.Resolve() : null;
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        var body = buffer.ToArray();
        if (agent is null || string.IsNullOrEmpty(secret) || body.Length > MaxBody || !Signed(body, secret, context.Request.Headers[SignatureHeader].ToString()))
        {
            return Results.Json(new Dictionary<string, string> { ["error"] = "no such webhook, or the signature does not match" }, statusCode: 404);
        }

        if (await store.ActiveCountAsync(agent.Name, context.RequestAborted) >= agent.Trigger!.Concurrency)
        {
            return Results.Json(new Dictionary<string, string> { ["error"] = $"{agent.Trigger.Concurrency} run(s) of this agent are not over yet (trigger.concurrency)" }, statusCode: 409);
        }

        var run = await engine.StartAsync(agent.Name, Input(body), "webhook", context.RequestAborted);
        return Results.Json(new Dictionary<string, string> { ["id"] = run.Id, ["status"] = run.Status }, statusCode: 202);
    }

    /// <summary>Compares the caller's signature with the body's HMAC in constant time.</summary>
    public static bool Signed(byte[] body, string secret, string header)
    {
        if (!header.StartsWith("sha256=", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        byte[] presented;
        try
        {
            presented = Convert.FromHexString(header.AsSpan(7).Trim());
        }
        catch (FormatException)
        {
            return false;
        }

        var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body);
        return CryptographicOperations.FixedTimeEquals(expected, presented);
    }

    public static string Sign(byte[] body, string secret) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), body));

    private static string Input(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.String)
            {
                return input.GetString()!;
            }
        }
        catch (JsonException)
        {
        }

        return Encoding.UTF8.GetString(body);
    }
}
