using Flotilla.Storage.Alerts;
using Flotilla.Storage.Usage;

namespace Flotilla.Governance.Budgets;

/// <summary>
/// Brings budget spend back after a restart: spend in each rule's current window is summed from the usage buckets
/// (written with the traces), and thresholds already alerted in that window are not alerted again.
/// </summary>
public static class BudgetRestore
{
    public static async Task RestoreAsync(BudgetLedger ledger, IUsageStore usage, IAlertStore alerts, TimeProvider time, CancellationToken cancellationToken)
    {
        if (ledger.Rules.Count == 0)
        {
            return;
        }

        var now = time.GetUtcNow();
        var earliest = ledger.Rules.Min(r => BudgetWindows.StartOf(r.Window, now));
        var fired = (await alerts.ListAsync(earliest, 10_000, cancellationToken)).Where(a => a.Kind == "budget_threshold").ToList();
        for (var i = 0; i < ledger.Rules.Count; i++)
        {
            var rule = ledger.Rules[i];
            var windowStart = BudgetWindows.StartOf(rule.Window, now);
            // Budgets on "model" follow the model named in the request, which the buckets keep as virtual_model.
            var dimension = rule.AppliesPer is "model" ? "virtual_model" : rule.AppliesPer;
            var spend = await usage.SpendSinceAsync(dimension, windowStart, cancellationToken);
            foreach (var (key, spent) in spend)
            {
                var thresholds = fired.Where(a => a.AppliesPer == rule.AppliesPer && a.Key == key && a.WindowStart == windowStart && a.Threshold is not null)
                    .Select(a => a.Threshold!.Value);
                ledger.Restore(rule, key, spent, thresholds);
            }
        }
    }
}
