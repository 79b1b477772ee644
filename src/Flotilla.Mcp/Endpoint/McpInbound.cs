using System.Net;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Mcp.Endpoint;

/// <summary>
/// Inbound auth for <c>/mcp</c>: which loop is calling. The same agent keys as <c>/v1</c>, as <c>Authorization: Bearer</c>.
/// No or an unknown key gets 401 with <c>WWW-Authenticate</c> naming the RFC 9728 protected-resource metadata. Requests
/// to a loopback listener must name a loopback host, and a browser's <c>Origin</c> must be the host itself, so a web page
/// cannot reach the endpoint through DNS rebinding. The key identifies the caller and goes no further: upstreams get the
/// server's own credentials.
/// </summary>
internal sealed class McpInbound(RequestDelegate next, AgentKeyRing keys, LiveFleet fleet)
{
    public const string AgentClaim = ClaimTypes.NameIdentifier;
    public const string KeyClaim = "flotilla:key";
    public const string MetadataPath = "/.well-known/oauth-protected-resource";

    public async Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!HostAllowed(context))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"host '{Sanitize(request.Host.Value)}' is not this gateway's loopback address; connect to 127.0.0.1 or localhost");
            return;
        }

        if (request.Headers.Origin.ToString() is { Length: > 0 } origin && !OriginAllowed(origin, request))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"origin '{Sanitize(origin)}' may not call this gateway; only same-origin browser requests are accepted");
            return;
        }

        var authorization = request.Headers.Authorization.ToString();
        const string Bearer = "Bearer ";
        if (!authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
        {
            await ChallengeAsync(context, "missing agent key: send Authorization: Bearer flt_...");
            return;
        }

        if (!keys.TryResolve(authorization.AsSpan(Bearer.Length).Trim(), out var record))
        {
            await ChallengeAsync(context, "unknown or revoked agent key");
            return;
        }

        if (!fleet.Current.Agents.ContainsKey(record.Agent))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, $"agent '{record.Agent}' is no longer in the fleet");
            return;
        }

        var limit = fleet.Current.Config.Gateway.Limits.MaxRequestBodyBytes;
        if (request.ContentLength > limit)
        {
            await RefuseAsync(context, StatusCodes.Status413RequestEntityTooLarge,
                $"the message is {request.ContentLength} bytes; the limit is {limit} (gateway.limits.max_request_body_bytes)");
            return;
        }

        context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(AgentClaim, record.Agent), new Claim(KeyClaim, record.Id)], "flotilla-agent-key", AgentClaim, null));
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            // A body over Kestrel's limit without a declared length, a client that stopped sending: a JSON-RPC error, not a crash.
            await RefuseAsync(context, e.StatusCode, e.StatusCode == StatusCodes.Status413RequestEntityTooLarge
                ? $"the message is over the limit of {limit} bytes (gateway.limits.max_request_body_bytes)"
                : Sanitize(e.Message));
        }
    }

    public static string? AgentOf(ClaimsPrincipal? user) => user?.FindFirst(AgentClaim)?.Value;

    public static string? KeyIdOf(ClaimsPrincipal? user) => user?.FindFirst(KeyClaim)?.Value;

    /// <summary>RFC 9728 metadata: this resource, and that it takes bearer tokens in the header (agent keys; no authorization server).</summary>
    public static IResult Metadata(HttpContext context)
    {
        var resource = $"{context.Request.Scheme}://{context.Request.Host}/mcp";
        return Results.Json(new ProtectedResourceMetadata(resource, [], ["header"], "Flotilla MCP gateway"),
            McpGatewayJson.Default.ProtectedResourceMetadata);
    }

    private static bool HostAllowed(HttpContext context)
    {
        var local = context.Connection.LocalIpAddress;
        if (local is null || !IPAddress.IsLoopback(local))
        {
            return true;
        }

        return IsLoopbackName(context.Request.Host.Host);
    }

    private static bool OriginAllowed(string origin, HttpRequest request) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri)
        && (string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase) || (IsLoopbackName(uri.Host) && IsLoopbackName(request.Host.Host)));

    private static bool IsLoopbackName(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    private static string Sanitize(string? text) => Flotilla.Fleet.DisplayText.Safe(text ?? "", 200);

    private static Task ChallengeAsync(HttpContext context, string message)
    {
        var metadata = $"{context.Request.Scheme}://{context.Request.Host}{MetadataPath}/mcp";
        context.Response.Headers.WWWAuthenticate = $"Bearer resource_metadata=\"{metadata}\"";
        return RefuseAsync(context, StatusCodes.Status401Unauthorized, message);
    }

    /// <summary>An HTTP-level refusal, with a JSON-RPC error body so MCP clients can show it.</summary>
    private static async Task RefuseAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.Body);
        writer.WriteStartObject();
        writer.WriteString("jsonrpc", "2.0");
        writer.WriteStartObject("error");
        writer.WriteNumber("code", status switch { 401 => -32001, 403 => Calls.McpErrors.Forbidden, _ => -32600 });
        writer.WriteString("message", message);
        writer.WriteEndObject();
        writer.WriteNull("id");
        writer.WriteEndObject();
    }
}

internal sealed record ProtectedResourceMetadata(
    string Resource,
    IReadOnlyList<string> AuthorizationServers,
    IReadOnlyList<string> BearerMethodsSupported,
    string ResourceName);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
[System.Text.Json.Serialization.JsonSerializable(typeof(ProtectedResourceMetadata))]
internal sealed partial class McpGatewayJson : System.Text.Json.Serialization.JsonSerializerContext;
