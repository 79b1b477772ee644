using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Governance.Identity;
using Flotilla.Harness.Runs;
using Flotilla.Storage.Runs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Flotilla.Server.Admin;

internal sealed record StartRunRequest(string? Input, bool? Wait);

internal sealed record RunDetail(RunRecord Run, IReadOnlyList<RunStepRecord> Steps, IReadOnlyList<StepVerdicts> Guardrails);

/// <summary>The guardrail verdicts on a step's trace (a model call's, or a tool call's).</summary>
internal sealed record StepVerdicts(int Seq, IReadOnlyList<Flotilla.Storage.Traces.TraceVerdict> Verdicts);

internal sealed record AgentDetail(
    string Name, string Owner, string? Description, string? Model, string Role, string? Checker,
    string? Instructions, string? InstructionsFile, bool? InstructionsFound, IReadOnlyList<string> Skills, IReadOnlyList<string> Subagents,
    AgentTrigger? Trigger, AgentLimits Limits, IReadOnlyList<string> Owns, IReadOnlyList<string> Tools, IReadOnlyList<RunRecord> LastRuns,
    decimal SpendLast7DaysUsd, int Keys);

internal sealed record AgentTrigger(string? Schedule, string? Timezone, int Concurrency, string Missed, bool Webhook);

internal sealed record AgentLimits(int MaxSteps, long MaxTokensPerRun, int TimeoutSeconds, decimal? MaxCostPerRun, int StuckAfter);

/// <summary>The harness's admin endpoints: start a run of an agent, list and show runs, cancel and resume them.</summary>
internal static class RunEndpoints
{
    private static readonly string[] Statuses =
    [
        RunStatus.Running, RunStatus.AwaitingApproval, RunStatus.Completed, RunStatus.Failed, RunStatus.LimitReached,
        RunStatus.Stuck, RunStatus.Denied, RunStatus.Cancelled, RunStatus.NeedsIntervention,
    ];

    public static void MapRunAdminApi(this RouteGroupBuilder api)
    {
        api.MapPost("/agents/{name}/runs", StartAsync);
        api.MapGet("/agents/{name}", ShowAgentAsync);
        api.MapGet("/runs", async (HttpContext context, IRunStore runs) =>
        {
            var agent = context.Request.Query["agent"].ToString() is { Length: > 0 } a ? a : null;
            var status = context.Request.Query["status"].ToString() is { Length: > 0 } s ? s : null;
            if (status is not null && !Statuses.Contains(status))
            {
                return AdminEndpoints.Error(400, "invalid_request_error", "invalid_status", $"status is one of {string.Join(", ", Statuses)}.");
            }

            var limit = int.TryParse(context.Request.Query["limit"], out var l) && l is > 0 and <= 10_000 ? l : 100;
            return Results.Json(new ListResponse<RunRecord>(await runs.ListAsync(agent, status, limit, context.RequestAborted)), AdminJson.Relaxed.ListResponseRunRecord);
        });
        api.MapGet("/runs/{id}", async (string id, IRunStore runs, Flotilla.Storage.Traces.ITraceStore traces, CancellationToken cancellationToken) =>
        {
            if (await runs.GetAsync(id, cancellationToken) is not { } run)
            {
                return NotFound(id);
            }

            var steps = await runs.StepsAsync(id, cancellationToken);
            var verdicts = new List<StepVerdicts>();
            foreach (var step in steps)
            {
                if (step.TraceId is { } traceId
                    && await traces.QueryAsync(new Flotilla.Storage.Traces.TraceQuery(Id: traceId, Limit: 1), cancellationToken) is [{ Guardrails: { Count: > 0 } found }, ..])
                {
                    verdicts.Add(new StepVerdicts(step.Seq, found));
                }
            }

            return Results.Json(new RunDetail(run, steps, verdicts), AdminJson.Relaxed.RunDetail);
        });
        api.MapPost("/runs/{id}/cancel", async (string id, RunEngine engine, IRunStore runs, CancellationToken cancellationToken) =>
            await engine.CancelAsync(id, cancellationToken) is { } run
                ? Results.Json(run, AdminJson.Relaxed.RunRecord)
                : await runs.GetAsync(id, cancellationToken) is { } over
                    ? AdminEndpoints.Error(409, "invalid_request_error", "run_over", $"Run {id} is {over.Status}; only a run that is not over can be cancelled.")
                    : NotFound(id));
        api.MapPost("/runs/{id}/resume", async (string id, RunEngine engine, IRunStore runs, CancellationToken cancellationToken) =>
            await engine.ResumeAsync(id, cancellationToken) is { } run
                ? Results.Json(run, AdminJson.Relaxed.RunRecord)
                : await runs.GetAsync(id, cancellationToken) is { } other
                    ? AdminEndpoints.Error(409, "invalid_request_error", "run_not_waiting", $"Run {id} is {other.Status}; only a run awaiting approval or needing intervention can be resumed.")
                    : NotFound(id));
    }

    private static async Task<IResult> StartAsync(string name, HttpContext context, RunEngine engine, LiveFleet fleet)
    {
        if (!fleet.Current.Agents.ContainsKey(name))
        {
            return AdminEndpoints.Error(404, "invalid_request_error", "agent_not_found", $"No agent '{DisplayText.Safe(name, 128)}' in the fleet.");
        }

        StartRunRequest? body = null;
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            body = buffer.Length == 0 ? null : JsonSerializer.Deserialize(buffer.ToArray(), AdminJson.Relaxed.StartRunRequest);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NotSupportedException)
        {
            return AdminEndpoints.Error(400, "invalid_request_error", "invalid_json", "Send a JSON object: {\"input\":\"TEXT\",\"wait\":false}.");
        }

        var input = body?.Input ?? "";
        if (input.Length > 1_000_000)
        {
            return AdminEndpoints.Error(413, "invalid_request_error", "input_too_large", "The input is over 1,000,000 characters.");
        }

        var run = await engine.StartAsync(name, input, "api", context.RequestAborted);
        if (body?.Wait == true)
        {
            run = await engine.WaitAsync(run.Id, context.RequestAborted) ?? run;
            return Results.Json(run, AdminJson.Relaxed.RunRecord);
        }

        return Results.Json(run, AdminJson.Relaxed.RunRecord, statusCode: 202);
    }

    /// <summary>The registry's view of one loop: its definition, the tools its grants resolve to now, its last runs and spend.</summary>
    private static async Task<IResult> ShowAgentAsync(string name, LiveFleet fleet, IRunStore runs, Flotilla.Mcp.GovernedToolCalls tools,
        Flotilla.Storage.Usage.IUsageStore usage, AgentKeyRing keys, HarnessOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!fleet.Current.Agents.TryGetValue(name, out var agent))
        {
            return AdminEndpoints.Error(404, "invalid_request_error", "agent_not_found", $"No agent '{DisplayText.Safe(name, 128)}' in the fleet.");
        }

        string? file = null;
        bool? found = null;
        if (agent.Instructions is { } pinned)
        {
            file = PinnedFiles.InstructionsPath(pinned, options.FleetDirectory ?? Directory.GetCurrentDirectory());
            found = File.Exists(file);
        }

        var spend = await usage.SpendSinceAsync("agent", time.GetUtcNow().AddDays(-7), cancellationToken);
        var detail = new AgentDetail(
            agent.Name, agent.Owner, agent.Description, agent.Model, agent.Role.ToString().ToLowerInvariant(), agent.Checker,
            agent.Instructions?.ToString(), file, found, [.. agent.Skills.Select(s => s.ToString())], agent.Subagents,
            agent.Trigger is { } t ? new AgentTrigger(t.Schedule, t.TimeZone, t.Concurrency, t.Missed == MissedBeats.RunOnce ? "run_once" : "skip", t.Webhook) : null,
            new AgentLimits(agent.Harness.MaxSteps, agent.Harness.MaxTokensPerRun, agent.Harness.TimeoutSeconds, agent.Harness.MaxCostPerRun, agent.Harness.StuckAfter),
            agent.Owns, [.. tools.ToolsFor(agent.Name).Select(tool => tool.Name)], await runs.ListAsync(agent.Name, null, 5, cancellationToken),
            spend.GetValueOrDefault(agent.Name), keys.List().Count(k => k.Agent == agent.Name));
        return Results.Json(detail, AdminJson.Relaxed.AgentDetail);
    }

    private static IResult NotFound(string id) =>
        AdminEndpoints.Error(404, "invalid_request_error", "not_found", $"No run '{DisplayText.Safe(id, 64)}'.");
}
