using System.Globalization;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway;
using Flotilla.Gateway.Protocol;
using Flotilla.Server.Hosting;
using Flotilla.Storage.Alerts;
using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Server.Admin;

/// <summary>The admin API under <c>/api</c>: admin token only; agent keys are refused with 403.</summary>
internal static class AdminEndpoints
{
    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api");
        api.AddEndpointFilter(async (invocation, next) =>
        {
            var context = invocation.HttpContext;
            var token = context.RequestServices.GetRequiredService<AdminToken>();
            var keys = context.RequestServices.GetRequiredService<AgentKeyRing>();
            var header = context.Request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                return Error(401, "authentication_error", "missing_admin_token",
                    "The admin API needs 'Authorization: Bearer <admin token>' (FLOTILLA_ADMIN_TOKEN, or the token printed at first start).");
            }

            var presented = header.AsSpan(7).Trim();
            if (presented.IsWhiteSpace())
            {
                // Refused before any comparison: no configuration may turn an empty token into a valid one.
                return Error(401, "authentication_error", "missing_admin_token",
                    "The admin token after 'Bearer ' is empty. Send 'Authorization: Bearer <admin token>'.");
            }

            if (token.Matches(presented))
            {
                return await next(invocation);
            }

            if (keys.TryResolve(presented, out _))
            {
                return Error(403, "permission_error", "agent_key_not_allowed", "Agent keys cannot use the admin API; use the admin token.");
            }

            return Error(401, "authentication_error", "invalid_admin_token", "The admin token is not valid.");
        });

        api.MapFallback(static (HttpContext context) => Error(404, "invalid_request_error", "unknown_endpoint",
            $"{context.Request.Method} {DisplayText.Safe(context.Request.Path.Value ?? "", 200)} is not an admin endpoint; see docs/admin-api.md."));
        api.MapPost("/keys", IssueKeyAsync);
        api.MapFleetApi();
        api.MapMcpAdminApi();
        api.MapRunAdminApi();
        api.MapGet("/keys", (AgentKeyRing keys) => Results.Json(
            new ListResponse<KeyInfo>(keys.List().Select(k => new KeyInfo(k.Id, k.Agent, k.Prefix, k.CreatedAt)).ToList()), AdminJson.Relaxed.ListResponseKeyInfo));
        api.MapDelete("/keys/{id}", async (string id, AgentKeyRing keys, CancellationToken cancellationToken) =>
            await keys.RevokeAsync(id, cancellationToken) ? Results.NoContent() : Error(404, "invalid_request_error", "not_found", $"No active key with id '{DisplayText.Safe(id, 128)}'."));
        api.MapGet("/traces", QueryTracesAsync);
        api.MapGet("/traces/{id}", async (string id, ITraceStore store, CancellationToken cancellationToken) =>
            await store.QueryAsync(new TraceQuery(Id: id, Limit: 1), cancellationToken) is [var trace, ..]
                ? Results.Json(trace, AdminJson.Relaxed.TraceRecord)
                : Error(404, "invalid_request_error", "not_found", $"No trace with id '{DisplayText.Safe(id, 128)}'."));
        api.MapGet("/cost", QueryCostAsync);
        api.MapGet("/budgets", (LiveFleet fleet) =>
            Results.Json(new ListResponse<BudgetInfo>(fleet.Current.Budgets.Status().Select(b => new BudgetInfo(
                b.AppliesPer, b.Key, b.LimitUsd, b.Window, decimal.Round(b.SpentUsd, 6), decimal.Round(b.ReservedUsd, 6),
                b.LimitUsd == 0 ? 0 : decimal.Round(b.SpentUsd / b.LimitUsd * 100m, 1), b.WindowStart, b.ResetsAt, b.Mode, b.Rule)).ToList()),
                AdminJson.Relaxed.ListResponseBudgetInfo));
        api.MapGet("/alerts", async (HttpContext context, IAlertStore alerts, TimeProvider time) =>
        {
            if (!TryReadSince(context, time, out var since, out var error) || !TryReadLimit(context, 100, out var limit, out error))
            {
                return error!;
            }

            return Results.Json(new ListResponse<AlertRecord>(await alerts.ListAsync(since, limit, context.RequestAborted)), AdminJson.Relaxed.ListResponseAlertRecord);
        });
        api.MapGet("/agents", (LiveFleet fleet, AgentKeyRing keys) =>
        {
            var counts = keys.List().GroupBy(k => k.Agent).ToDictionary(g => g.Key, g => g.Count());
            var agents = fleet.Fleet.Agents.Select(a => new AgentInfo(
                a.Name, a.Owner, a.Description, a.Model, a.Instructions?.ToString(), a.Skills.Select(s => s.ToString()).ToList(),
                a.McpServers.Select(g => g.Server).ToList(), a.Subagents, a.Trigger?.Schedule, a.Owns, counts.GetValueOrDefault(a.Name))).ToList();
            return Results.Json(new ListResponse<AgentInfo>(agents), AdminJson.Relaxed.ListResponseAgentInfo);
        });
        api.MapGet("/targets", (FleetState fleet) =>
        {
            var health = fleet.TargetHealth();
            var targets = fleet.Fleet.Gateway.Models.Select(m => health.TryGetValue(m.Name, out var h)
                ? new TargetInfo(m.Name, m.Provider, h.ConsecutiveFailures, h.CoolingUntil, h.MsPerToken)
                : new TargetInfo(m.Name, m.Provider, 0, null, null)).ToList();
            return Results.Json(new ListResponse<TargetInfo>(targets), AdminJson.Relaxed.ListResponseTargetInfo);
        });
        return endpoints;
    }

    private static async Task<IResult> IssueKeyAsync(HttpContext context, AgentKeyRing keys, LiveFleet fleet)
    {
        IssueKeyRequest? request;
        try
        {
            request = await JsonSerializer.DeserializeAsync(context.Request.Body, AdminJson.Relaxed.IssueKeyRequest, context.RequestAborted);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            // InvalidOperationException: a string that cannot be decoded (an unpaired surrogate escape, invalid UTF-8).
            return Error(400, "invalid_request_error", "invalid_json", "Send a JSON object: {\"agent\":\"NAME\"}.");
        }

        if (string.IsNullOrWhiteSpace(request?.Agent))
        {
            return Error(400, "invalid_request_error", "invalid_request", "'agent' is required: {\"agent\":\"NAME\"}.");
        }

        if (fleet.Fleet.FindAgent(request.Agent) is null)
        {
            var known = string.Join(", ", fleet.Fleet.Agents.Select(a => a.Name));
            return Error(404, "invalid_request_error", "agent_not_found",
                $"No agent '{DisplayText.Safe(request.Agent, 128)}' in the fleet file; keys are issued only to registered agents (declared: {(known.Length == 0 ? "none" : known)}).");
        }

        var (key, record) = await keys.IssueAsync(request.Agent, context.RequestAborted);
        return Results.Json(new IssuedKey(record.Id, record.Agent, key, record.Prefix, record.CreatedAt, "Shown once: Flotilla keeps only a hash of this key."),
            AdminJson.Relaxed.IssuedKey, statusCode: 201);
    }

    private static async Task<IResult> QueryTracesAsync(HttpContext context, ITraceStore store, TimeProvider time)
    {
        var query = context.Request.Query;
        DateTimeOffset? since = null;
        if (query["since"].ToString() is { Length: > 0 } sinceText)
        {
            if (TimeExpressions.TryParseSince(sinceText, time.GetUtcNow(), out var parsed))
            {
                since = parsed;
            }
            else
            {
                return Error(400, "invalid_request_error", "invalid_since", "'since' is a duration back from now (30m, 24h, 7d) or an ISO 8601 time.");
            }
        }

        var limit = 50;
        if (query["limit"].ToString() is { Length: > 0 } limitText
            && (!int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            return Error(400, "invalid_request_error", "invalid_limit", "'limit' is an integer from 1 to 10000.");
        }

        var agent = query["agent"].ToString() is { Length: > 0 } a ? a : null;
        var traces = await store.QueryAsync(new TraceQuery(agent, since, limit), context.RequestAborted);
        return Results.Json(new ListResponse<TraceRecord>(traces), AdminJson.Relaxed.ListResponseTraceRecord);
    }

    private static async Task<IResult> QueryCostAsync(HttpContext context, IUsageStore usage, TimeProvider time)
    {
        var by = context.Request.Query["by"].ToString();
        if (by.Length == 0)
        {
            by = "agent";
        }

        if (by is not ("agent" or "team" or "model" or "virtual_model") && !(by.StartsWith("metadata.", StringComparison.Ordinal) && by.Length > 9))
        {
            return Error(400, "invalid_request_error", "invalid_by", "'by' is one of agent, team, model, virtual_model or metadata.KEY (e.g. metadata.loop).");
        }

        if (!TryReadSince(context, time, out var since, out var error))
        {
            return error!;
        }

        DateTimeOffset? until = null;
        if (context.Request.Query["until"].ToString() is { Length: > 0 } untilText)
        {
            if (!TimeExpressions.TryParseSince(untilText, time.GetUtcNow(), out var parsed))
            {
                return Error(400, "invalid_request_error", "invalid_until", "'until' is a duration back from now (1h, 7d) or an ISO 8601 time.");
            }

            until = parsed;
        }

        // Rollups are hourly buckets: the range starts at the hour that contains 'since'.
        var requested = since ?? time.GetUtcNow().AddDays(-7);
        var from = requested.AddTicks(-(requested.UtcTicks % TimeSpan.TicksPerHour));
        var rows = await usage.QueryAsync(by, from, until, context.RequestAborted);
        var total = new CostTotals(rows.Sum(r => r.Calls), rows.Sum(r => r.Errors), rows.Sum(r => r.Fallbacks), rows.Sum(r => r.CacheHits),
            rows.Sum(r => r.InputTokens), rows.Sum(r => r.OutputTokens), rows.Sum(r => r.CostUsd));
        return Results.Json(new CostResponse(by, from, until, rows, total), AdminJson.Relaxed.CostResponse);
    }

    private static bool TryReadSince(HttpContext context, TimeProvider time, out DateTimeOffset? since, out IResult? error)
    {
        since = null;
        error = null;
        if (context.Request.Query["since"].ToString() is not { Length: > 0 } text)
        {
            return true;
        }

        if (TimeExpressions.TryParseSince(text, time.GetUtcNow(), out var parsed))
        {
            since = parsed;
            return true;
        }

        error = Error(400, "invalid_request_error", "invalid_since", "'since' is a duration back from now (30m, 24h, 7d) or an ISO 8601 time.");
        return false;
    }

    private static bool TryReadLimit(HttpContext context, int fallback, out int limit, out IResult? error)
    {
        error = null;
        limit = fallback;
        if (context.Request.Query["limit"].ToString() is { Length: > 0 } text
            && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
        {
            error = Error(400, "invalid_request_error", "invalid_limit", "'limit' is an integer from 1 to 10000.");
            return false;
        }

        return true;
    }

    internal static IResult Error(int status, string type, string code, string message) =>
        Results.Json(new AdminError(new AdminErrorBody(message, type, code)), AdminJson.Relaxed.AdminError, statusCode: status);
}

/// <summary>Time arguments shared by the admin API and the CLI.</summary>
public static class TimeExpressions
{
    /// <summary>Parses <c>30m</c>, <c>24h</c>, <c>7d</c> (back from <paramref name="now"/>) or an ISO 8601 time.</summary>
    public static bool TryParseSince(string text, DateTimeOffset now, out DateTimeOffset since)
    {
        if (DurationText.TryParse(text, out var back))
        {
            since = now - back;
            return true;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out since);
    }
}
