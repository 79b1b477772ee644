using System.Globalization;
using System.Text;
using Flotilla.Fleet;
using Flotilla.Server.Fleet;
using Flotilla.Storage.Fleet;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Flotilla.Server.Admin;

/// <summary>
/// <c>/api/fleet</c>: the fleet in force, its revisions, and plan/apply. The body of a POST is the fleet YAML itself;
/// <c>?dry_run=true</c> plans without applying; <c>?file=NAME</c> names the file in error positions.
/// </summary>
internal static class FleetEndpoints
{
    /// <summary>Largest fleet file accepted.</summary>
    public const int MaxFleetBytes = 4 * 1024 * 1024;

    public const string ActorHeader = "X-Flotilla-Actor";

    public static void MapFleetApi(this RouteGroupBuilder api)
    {
        api.MapGet("/fleet", async (FleetApplier applier, IFleetRevisionStore revisions, CancellationToken cancellationToken) =>
        {
            var latest = await revisions.LatestAsync(cancellationToken);
            var yaml = applier.CurrentYaml;
            return yaml is null
                ? AdminEndpoints.Error(404, "invalid_request_error", "no_fleet_yaml", "This server was started without fleet YAML to show; apply one with POST /api/fleet.")
                : Results.Json(new FleetInfo(latest?.Number ?? 0, FleetApplier.Sha256(yaml), latest?.AppliedAt, latest?.AppliedBy, yaml), AdminJson.Relaxed.FleetInfo);
        });
        api.MapPost("/fleet", ApplyAsync);
        api.MapGet("/fleet/revisions", async (HttpContext context, IFleetRevisionStore revisions) =>
        {
            var limit = 100;
            if (context.Request.Query["limit"].ToString() is { Length: > 0 } text
                && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 10_000))
            {
                return AdminEndpoints.Error(400, "invalid_request_error", "invalid_limit", "'limit' is an integer from 1 to 10000.");
            }

            var list = await revisions.ListAsync(limit, context.RequestAborted);
            return Results.Json(new ListResponse<RevisionInfo>(list.Select(r => new RevisionInfo(r.Number, r.AppliedAt, r.AppliedBy, r.Sha256, r.Changes, null)).ToList()),
                AdminJson.Relaxed.ListResponseRevisionInfo);
        });
        api.MapGet("/fleet/revisions/{number:int}", async (int number, IFleetRevisionStore revisions, CancellationToken cancellationToken) =>
            await revisions.GetAsync(number, cancellationToken) is { } r
                ? Results.Json(new RevisionInfo(r.Number, r.AppliedAt, r.AppliedBy, r.Sha256, r.Changes, r.Yaml), AdminJson.Relaxed.RevisionInfo)
                : AdminEndpoints.Error(404, "invalid_request_error", "not_found", $"No fleet revision {number}; ./flotilla revisions lists them."));
    }

    private static async Task<IResult> ApplyAsync(HttpContext context, FleetApplier applier)
    {
        var request = context.Request;
        if (request.ContentLength > MaxFleetBytes)
        {
            return AdminEndpoints.Error(413, "invalid_request_error", "request_too_large", $"A fleet file is at most {MaxFleetBytes} bytes.");
        }

        string yaml;
        using (var buffer = new MemoryStream())
        {
            await request.Body.CopyToAsync(buffer, context.RequestAborted);
            if (buffer.Length > MaxFleetBytes)
            {
                return AdminEndpoints.Error(413, "invalid_request_error", "request_too_large", $"A fleet file is at most {MaxFleetBytes} bytes.");
            }

            try
            {
                yaml = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            }
            catch (DecoderFallbackException)
            {
                return AdminEndpoints.Error(400, "invalid_request_error", "invalid_fleet", "The fleet file is not valid UTF-8.");
            }
        }

        if (string.IsNullOrWhiteSpace(yaml))
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "invalid_fleet", "Send the fleet YAML as the request body (an empty fleet is not applied by accident).");
        }

        var file = request.Query["file"].ToString() is { Length: > 0 and <= 200 } name && !DisplayText.HasUnsafe(name) ? name : "fleet.yaml";
        var dryRun = request.Query["dry_run"].ToString() is "true" or "1";
        var actor = request.Headers[ActorHeader].ToString() is { Length: > 0 and <= 64 } who && !DisplayText.HasUnsafe(who) ? $"admin ({who})" : "admin";
        var result = dryRun ? applier.Plan(yaml, file) : await applier.ApplyAsync(yaml, file, actor, context.RequestAborted);
        if (!result.IsValid)
        {
            return Results.Json(new FleetRefused(new AdminErrorBody($"The fleet has {result.Errors.Count} error(s); nothing was changed.", "invalid_request_error", "invalid_fleet"), result.Errors),
                AdminJson.Relaxed.FleetRefused, statusCode: 400);
        }

        return Results.Json(new FleetApplyResponse(result.Revision, result.Applied, dryRun, result.Changes), AdminJson.Relaxed.FleetApplyResponse);
    }
}

internal sealed record FleetInfo(int Revision, string Sha256, DateTimeOffset? AppliedAt, string? AppliedBy, string Yaml);

internal sealed record RevisionInfo(int Revision, DateTimeOffset AppliedAt, string AppliedBy, string Sha256, IReadOnlyList<string> Changes, string? Yaml);

internal sealed record FleetApplyResponse(int Revision, bool Applied, bool DryRun, IReadOnlyList<string> Changes);

internal sealed record FleetRefused(AdminErrorBody Error, IReadOnlyList<string> Errors);
