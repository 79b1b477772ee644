using Flotilla.Governance.Alerts;
using Flotilla.Governance.Calls;
using Flotilla.Governance.Errors;

namespace Flotilla.Governance.Budgets;

/// <summary>
/// The budget policy on the governed path: reserve the worst case before dispatch (or refuse with 429), settle the actual
/// cost after, and raise the alerts either step crosses.
/// </summary>
public sealed class BudgetStep(AlertDispatcher alerts, TimeProvider time)
{
    /// <summary>
    /// Reserves <paramref name="worstCase"/> (asked for only when a budget applies: a model call prices its estimate at the
    /// dearest target of its route) against every matching rule, or refuses with 429 and Retry-After.
    /// </summary>
    public void Acquire(GovernedCall call, Func<GovernedCall, decimal> worstCase)
    {
        var ledger = call.Snapshot.Budgets;
        if (ledger.Rules.Count == 0)
        {
            return;
        }

        var worst = worstCase(call);
        if (call.EstimateIsUpperBound && !ledger.Fits(call.Subject, worst) && call.RefineEstimate())
        {
            // The cheap upper bound would not fit: reserve on the tokenizer's count (checked first, because a refusal
            // raises alerts and audit notes).
            worst = worstCase(call);
        }

        var decision = ledger.TryReserve(call.Subject, worst);
        call.Budget = decision;
        foreach (var note in decision.AuditNotes ?? [])
        {
            call.Note("budget audit: would have refused: " + note);
        }

        foreach (var note in decision.AuditAlerts ?? [])
        {
            alerts.PublishWouldBlock(note, call.Caller!.Agent.Name);
        }

        if (!decision.IsAllowed)
        {
            Raise(call, decision.Alerts);
            var wait = decision.ResetsAt!.Value - time.GetUtcNow();
            throw new GatewayException(429, "rate_limit_error", ErrorCodes.BudgetExceeded, decision.Reason!)
            {
                RetryAfterSeconds = (int)Math.Max(1, Math.Ceiling(wait.TotalSeconds)),
            };
        }
    }

    /// <summary>Always runs: a failed call releases its reservation; spend counts what was actually used.</summary>
    public void Settle(GovernedCall call)
    {
        if (call.Budget is { IsAllowed: true } decision)
        {
            Raise(call, call.Snapshot.Budgets.Settle(decision, call.CostUsd));
        }
    }

    private void Raise(GovernedCall call, IReadOnlyList<BudgetAlert> crossed)
    {
        foreach (var alert in crossed)
        {
            alerts.Publish(alert);
            call.Note($"budget alert: {alert.Rule.AppliesPer} '{alert.Key}' reached {alert.Threshold}%");
        }
    }
}
