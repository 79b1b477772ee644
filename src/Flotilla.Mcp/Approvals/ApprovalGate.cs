using System.Security.Cryptography;
using Flotilla.Mcp.Calls;
using Flotilla.Storage.Mcp;
using Microsoft.Extensions.Logging;

namespace Flotilla.Mcp.Approvals;

/// <summary>What the gate made of a destructive call.</summary>
internal abstract record GateOutcome
{
    /// <summary>Approved for exactly this call and now used up: run it.</summary>
    public sealed record Proceed(ApprovalRecord Approval) : GateOutcome;

    /// <summary>Waiting for a human; the call has not run.</summary>
    public sealed record Waiting(ApprovalRecord Approval) : GateOutcome;

    /// <summary>Denied (or expired unanswered); the call has not run.</summary>
    public sealed record Refused(ApprovalRecord Approval, string Message) : GateOutcome;
}

/// <summary>What an operator's decision did.</summary>
public enum DecisionResult { Decided, NotFound, NotPending, Expired }

/// <summary>
/// The approval gate on destructive tools. A destructive call does not run: it leaves a durable pending approval, bound to
/// the agent, the user it acts for, server, tool and the SHA-256 of the canonical arguments, and the caller is told to retry the same call after
/// the decision. Approved, the retry runs once and the approval is used up; denied, the retry is refused with who decided,
/// when and why; expired unanswered, the retry is refused saying so, and a new approval is asked for. Another call (other
/// arguments, another tool, another user) never matches: it asks for its own approval.
/// </summary>
public sealed partial class ApprovalGate(IApprovalStore store, TimeProvider time, ILogger<ApprovalGate> logger)
{
    internal async Task<GateOutcome> PassAsync(ToolCall call, string canonicalArguments, string? approvalId, CancellationToken cancellationToken)
    {
        var agent = call.Caller!.Agent.Name;
        ApprovalRecord? approval;
        if (approvalId is not null)
        {
            approval = await store.GetAsync(approvalId, cancellationToken);
            if (approval is null || approval.Agent != agent)
            {
                throw McpErrors.Error(McpErrors.Forbidden, $"approval '{Fleet.DisplayText.Safe(approvalId, 64)}' does not exist for agent '{agent}'");
            }

            if (approval.Server != call.Server || approval.Tool != call.Tool || approval.ArgumentsSha256 != call.ArgumentsSha256 || approval.User != call.User)
            {
                throw McpErrors.Error(McpErrors.Forbidden, $"approval {approval.Id} was given for {approval.Server}__{approval.Tool} with other arguments or for another user " +
                    $"(sha256 {approval.ArgumentsSha256[..12]}…); an approval covers exactly the call it was asked for");
            }
        }
        else
        {
            approval = await store.LatestForAsync(agent, call.User, call.Server!, call.Tool!, call.ArgumentsSha256, cancellationToken);
        }

        var now = time.GetUtcNow();
        string? expired = null;
        switch (approval?.Status)
        {
            case ApprovalStatus.Pending when now < approval.ExpiresAt:
                return new GateOutcome.Waiting(approval);
            case ApprovalStatus.Pending or ApprovalStatus.Expired:
                if (approval.Status == ApprovalStatus.Pending)
                {
                    await store.DecideAsync(approval.Id, ApprovalStatus.Expired, "flotilla", "no decision before it expired", now, cancellationToken);
                    LogExpired(logger, approval.Id, agent, call.Exposed);
                }

                expired = $"approval {approval.Id} expired unanswered at {approval.ExpiresAt:u}, so the call was not run";
                break;
            case ApprovalStatus.Approved when await store.ConsumeAsync(approval.Id, now, cancellationToken):
                return new GateOutcome.Proceed(approval);
            case ApprovalStatus.Denied:
                return new GateOutcome.Refused(approval, $"approval {approval.Id} was denied by {approval.DecidedBy} at {approval.DecidedAt:u}: {approval.Reason}");
            case ApprovalStatus.Consumed or ApprovalStatus.Approved when approvalId is not null:
                throw McpErrors.Error(McpErrors.Forbidden, $"approval {approval!.Id} was already used at {approval.ConsumedAt:u}; an approval runs one call once");
        }

        var created = new ApprovalRecord
        {
            Id = "apr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            Agent = agent,
            Run = call.Run,
            User = call.User,
            Server = call.Server!,
            Tool = call.Tool!,
            Arguments = SecretScrubber.Scrub(canonicalArguments)!,
            ArgumentsSha256 = call.ArgumentsSha256,
            RequestedAt = now,
            ExpiresAt = now + call.Snapshot.Config.Gateway.Mcp.ApprovalTtl,
        };
        await store.AddAsync(created, cancellationToken);
        LogRequested(logger, created.Id, agent, call.Exposed, created.ExpiresAt);
        return expired is null
            ? new GateOutcome.Waiting(created)
            : new GateOutcome.Refused(created, $"{expired}; approval {created.Id} now asks again, until {created.ExpiresAt:u}");
    }

    /// <summary>An operator's decision: approve or deny a pending approval (deny needs a reason). Audited on the record and in the log.</summary>
    public async Task<(DecisionResult Result, ApprovalRecord? Approval)> DecideAsync(string id, bool approve, string decidedBy, string? reason, CancellationToken cancellationToken)
    {
        var approval = await store.GetAsync(id, cancellationToken);
        if (approval is null)
        {
            return (DecisionResult.NotFound, null);
        }

        var now = time.GetUtcNow();
        if (approval.Status == ApprovalStatus.Pending && now >= approval.ExpiresAt)
        {
            await store.DecideAsync(id, ApprovalStatus.Expired, "flotilla", "no decision before it expired", now, cancellationToken);
            return (DecisionResult.Expired, await store.GetAsync(id, cancellationToken));
        }

        if (!await store.DecideAsync(id, approve ? ApprovalStatus.Approved : ApprovalStatus.Denied, decidedBy, reason, now, cancellationToken))
        {
            return (DecisionResult.NotPending, await store.GetAsync(id, cancellationToken));
        }

        LogDecided(logger, id, approve ? "approved" : "denied", decidedBy, approval.Agent, $"{approval.Server}__{approval.Tool}", reason ?? "");
        return (DecisionResult.Decided, await store.GetAsync(id, cancellationToken));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "approval {Id} requested: agent {Agent} calling {Tool}; expires {ExpiresAt:u}")]
    private static partial void LogRequested(ILogger logger, string id, string agent, string tool, DateTimeOffset expiresAt);

    [LoggerMessage(Level = LogLevel.Information, Message = "approval {Id} {Decision} by {By}: agent {Agent} calling {Tool}; reason: {Reason}")]
    private static partial void LogDecided(ILogger logger, string id, string decision, string by, string agent, string tool, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "approval {Id} expired unanswered: agent {Agent} calling {Tool} was not run")]
    private static partial void LogExpired(ILogger logger, string id, string agent, string tool);
}
