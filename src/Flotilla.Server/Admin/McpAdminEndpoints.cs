using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Mcp.Approvals;
using Flotilla.Storage.Mcp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Flotilla.Server.Admin;

/// <summary>The MCP gateway's admin endpoints: approvals of destructive tool calls.</summary>
internal static class McpAdminEndpoints
{
    public static void MapMcpAdminApi(this RouteGroupBuilder api)
    {
        api.MapGet("/approvals", async (HttpContext context, IApprovalStore approvals) =>
        {
            var status = context.Request.Query["status"].ToString() is { Length: > 0 } s ? s : null;
            if (status is not (null or ApprovalStatus.Pending or ApprovalStatus.Approved or ApprovalStatus.Denied or ApprovalStatus.Expired or ApprovalStatus.Consumed))
            {
                return AdminEndpoints.Error(400, "invalid_request_error", "invalid_status", "status is one of pending, approved, denied, expired, consumed.");
            }

            var limit = int.TryParse(context.Request.Query["limit"], out var l) ? l : 100;
            return Results.Json(new ListResponse<ApprovalRecord>(await approvals.ListAsync(status, limit, context.RequestAborted)), AdminJson.Relaxed.ListResponseApprovalRecord);
        });
        api.MapGet("/approvals/{id}", async (string id, IApprovalStore approvals, CancellationToken cancellationToken) =>
            await approvals.GetAsync(id, cancellationToken) is { } approval
                ? Results.Json(approval, AdminJson.Relaxed.ApprovalRecord)
                : NotFound(id));
        api.MapGet("/mcp/servers", (Flotilla.Mcp.Upstreams.McpStatus status) =>
            Results.Json(new ListResponse<Flotilla.Mcp.Upstreams.McpServerStatus>(status.Servers()), AdminJson.Relaxed.ListResponseMcpServerStatus));
        api.MapPut("/mcp/tokens/{server}/{user}", PutTokenAsync);
        api.MapDelete("/mcp/tokens/{server}/{user}", async (string server, string user, Flotilla.Mcp.Credentials.TokenVault vault, CancellationToken cancellationToken) =>
            await vault.DeleteAsync(server, user, cancellationToken)
                ? Results.NoContent()
                : AdminEndpoints.Error(404, "invalid_request_error", "not_found", $"User '{DisplayText.Safe(user, 128)}' has no token for '{DisplayText.Safe(server, 128)}'."));
        api.MapGet("/mcp/tokens", async (HttpContext context, Flotilla.Mcp.Credentials.TokenVault vault) =>
        {
            var server = context.Request.Query["server"].ToString() is { Length: > 0 } s ? s : null;
            var tokens = (await vault.ListAsync(server, context.RequestAborted)).Select(t => new TokenInfo(t.Server, t.User, t.UpdatedAt, t.KeyId == vault.KeyId)).ToList();
            return Results.Json(new ListResponse<TokenInfo>(tokens), AdminJson.Relaxed.ListResponseTokenInfo);
        });
        api.MapGet("/artifacts/{name}", async (string name, Flotilla.Mcp.Grants.ArtifactDirectory artifacts, CancellationToken cancellationToken) =>
            await artifacts.DescribeAsync(name, cancellationToken) is { } report
                ? Results.Json(report, AdminJson.Relaxed.ArtifactReport)
                : AdminEndpoints.Error(404, "invalid_request_error", "not_found",
                    $"No artifact '{DisplayText.Safe(name, 128)}': it is neither under gateway.artifacts nor in any agent's owns."));
        api.MapPost("/approvals/{id}/approve", (string id, HttpContext context, ApprovalGate gate) => DecideAsync(id, approve: true, context, gate));
        api.MapPost("/approvals/{id}/deny", (string id, HttpContext context, ApprovalGate gate) => DecideAsync(id, approve: false, context, gate));
    }

    private static async Task<IResult> DecideAsync(string id, bool approve, HttpContext context, ApprovalGate gate)
    {
        DecisionRequest? body = null;
        if (context.Request.ContentLength is not 0 && context.Request.Body is { } stream)
        {
            try
            {
                using var buffer = new MemoryStream();
                await stream.CopyToAsync(buffer, context.RequestAborted);
                body = buffer.Length == 0 ? null : JsonSerializer.Deserialize(buffer.ToArray(), AdminJson.Relaxed.DecisionRequest);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
            {
                return AdminEndpoints.Error(400, "invalid_request_error", "invalid_json", "Send a JSON object: {\"reason\":\"TEXT\"}.");
            }
        }

        var reason = body?.Reason is { } r && !string.IsNullOrWhiteSpace(r) ? DisplayText.Safe(r.Trim(), 1000) : null;
        if (!approve && reason is null)
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "reason_required", "A denial needs a reason: {\"reason\":\"TEXT\"}; the loop and the audit trail see it.");
        }

        var actor = context.Request.Headers[FleetEndpoints.ActorHeader].ToString() is { Length: > 0 and <= 64 } who && !DisplayText.HasUnsafe(who) ? $"admin ({who})" : "admin";
        var (result, approval) = await gate.DecideAsync(id, approve, actor, reason, context.RequestAborted);
        return result switch
        {
            DecisionResult.Decided => Results.Json(approval!, AdminJson.Relaxed.ApprovalRecord),
            DecisionResult.NotFound => NotFound(id),
            DecisionResult.Expired => AdminEndpoints.Error(409, "invalid_request_error", "approval_expired",
                $"Approval {approval!.Id} expired at {approval.ExpiresAt:u} before a decision; the call was not run. The loop asks again when it retries."),
            _ => AdminEndpoints.Error(409, "invalid_request_error", "approval_not_pending",
                $"Approval {approval!.Id} is {approval.Status}{(approval.DecidedBy is null ? "" : $" (by {approval.DecidedBy} at {approval.DecidedAt:u})")}; only a pending approval can be decided."),
        };
    }

    /// <summary>Stores a user's token for a per_user server, sealed; the answer never echoes it.</summary>
    private static async Task<IResult> PutTokenAsync(string server, string user, HttpContext context, Flotilla.Mcp.Credentials.TokenVault vault, LiveFleet fleet)
    {
        var config = fleet.Current.Config.FindMcpServer(server);
        if (config is null)
        {
            return AdminEndpoints.Error(404, "invalid_request_error", "not_found", $"No mcp_server '{DisplayText.Safe(server, 128)}' in the fleet.");
        }

        if (config.Auth.Type != McpAuthType.PerUser)
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "not_per_user", $"mcp_server '{server}' does not take per-user tokens (its auth is {config.Auth.Type.ToString().ToLowerInvariant()}); set auth: {{ type: per_user }} first.");
        }

        if (user.Length is 0 or > 128 || DisplayText.HasUnsafe(user))
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "invalid_user", "The user name must be 1-128 characters without control characters.");
        }

        TokenRequest? body;
        try
        {
            body = await JsonSerializer.DeserializeAsync(context.Request.Body, AdminJson.Relaxed.TokenRequest, context.RequestAborted);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "invalid_json", "Send a JSON object: {\"token\":\"…\"}.");
        }

        if (string.IsNullOrWhiteSpace(body?.Token) || body.Token.Length > 16_384)
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "invalid_request", "'token' is required (at most 16 KB): {\"token\":\"…\"}.");
        }

        try
        {
            await vault.PutAsync(server, user, body.Token, context.RequestAborted);
        }
        catch (Flotilla.Mcp.Credentials.TokenVaultException e)
        {
            return AdminEndpoints.Error(503, "server_error", "vault_unavailable", e.Message);
        }

        return Results.NoContent();
    }

    private static IResult NotFound(string id) =>
        AdminEndpoints.Error(404, "invalid_request_error", "not_found", $"No approval with id '{DisplayText.Safe(id, 128)}'.");
}

internal sealed record DecisionRequest(string? Reason);

internal sealed record TokenRequest(string? Token);

/// <summary>A stored token's slot, never the token: whether it opens with the vault key in force.</summary>
internal sealed record TokenInfo(string Server, string User, DateTimeOffset UpdatedAt, bool CurrentKey);
