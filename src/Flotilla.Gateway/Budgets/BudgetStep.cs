using Flotilla.Gateway.Alerts;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;

namespace Flotilla.Gateway.Budgets;

/// <summary>
/// The budget policy on the governed path: reserve the worst case before dispatch (or refuse with 429), settle the actual
/// cost after, and raise the alerts either step crosses.
/// </summary>
internal sealed class BudgetStep(AlertDispatcher alerts, TimeProvider time)
{
    public void Acquire(ModelCall call)
    {
        var ledger = call.Runtime.Budgets;
        if (ledger.Rules.Count == 0)
        {
            return;
        }

        var worstCase = call.Route!.Members.Max(m => m.Model.Config.Price.Cost(call.EstimatedInputTokens, call.MaxOutputTokens));
        var decision = ledger.TryReserve(call.Subject, worstCase);
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
    public void Settle(ModelCall call)
    {
        if (call.Budget is { IsAllowed: true } decision)
        {
            Raise(call, call.Runtime.Budgets.Settle(decision, call.CostUsd));
        }
    }

    private void Raise(ModelCall call, IReadOnlyList<BudgetAlert> crossed)
    {
        foreach (var alert in crossed)
        {
            alerts.Publish(alert);
            call.Note($"budget alert: {alert.Rule.AppliesPer} '{alert.Key}' reached {alert.Threshold}%");
        }
    }
}
