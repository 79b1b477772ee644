using System.Collections.Concurrent;
using Flotilla.Fleet;
using Flotilla.Gateway.Policy;

namespace Flotilla.Gateway.Budgets;

/// <summary>
/// Spend per <c>budgets</c> rule and key, in the rule's current UTC window. Before a call, a worst-case reservation
/// (estimated input tokens and <c>max_tokens</c> at the route's dearest price) is taken against every matching rule, or
/// the call is refused when any enforcing rule cannot cover it; after the call the reservation is replaced by the
/// actual cost. Concurrent calls therefore cannot overshoot a budget by more than one call's underestimate.
/// Thresholds in <c>alert_at</c> fire once per window.
/// </summary>
internal sealed class BudgetLedger(IReadOnlyList<BudgetRule> rules, TimeProvider time)
{
    private readonly ConcurrentDictionary<(int Rule, string Key), Account> _accounts = new();

    public IReadOnlyList<BudgetRule> Rules => rules;

    /// <summary>Reserves <paramref name="worstCaseUsd"/> against every matching rule, or refuses.</summary>
    public BudgetDecision TryReserve(in CallSubject subject, decimal worstCaseUsd)
    {
        if (rules.Count == 0)
        {
            return BudgetDecision.None;
        }

        var now = time.GetUtcNow();
        var held = new List<Account>(rules.Count);
        List<string>? auditNotes = null;
        List<string>? auditAlerts = null;
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (subject.KeyFor(rule.AppliesPer) is not { } key)
            {
                continue;
            }

            var account = _accounts.GetOrAdd((i, key), static (k, r) => new Account(r[k.Rule], k.Key), rules);
            if (account.TryReserve(now, worstCaseUsd, out var spent, out var resetsAt))
            {
                held.Add(account);
                continue;
            }

            var message = $"Budget exhausted: {rule.AppliesPer} '{key}' has spent ${spent:0.####} of ${rule.LimitUsd:0.##} per {BudgetWindows.Name(rule.Window)} " +
                $"(gateway.budgets, line {rule.Location.Line}); it resets at {resetsAt:yyyy-MM-ddTHH:mm:ssZ}.";
            if (rule.Mode == PolicyMode.Audit)
            {
                // Audit: record what would have been refused, let the call through and count its spend.
                (auditNotes ??= []).Add(message);
                if (account.FirstAuditInWindow(now))
                {
                    (auditAlerts ??= []).Add(message);
                }

                account.ForceReserve(now, worstCaseUsd);
                held.Add(account);
                continue;
            }

            foreach (var account2 in held)
            {
                account2.Release(worstCaseUsd);
            }

            // A refused call means the budget is used up for practical purposes: thresholds up to 100 % not yet alerted fire now.
            return new BudgetDecision(false, message, resetsAt, [], worstCaseUsd, auditNotes) { Alerts = account.Exhausted(now), AuditAlerts = auditAlerts };
        }

        return new BudgetDecision(true, null, null, held, worstCaseUsd, auditNotes) { AuditAlerts = auditAlerts };
    }

    /// <summary>Replaces the reservation with the actual cost; returns the alerts this spend crossed.</summary>
    public IReadOnlyList<BudgetAlert> Settle(BudgetDecision decision, decimal actualUsd)
    {
        if (decision.Accounts.Count == 0)
        {
            return [];
        }

        var now = time.GetUtcNow();
        List<BudgetAlert>? alerts = null;
        foreach (var account in decision.Accounts)
        {
            account.Settle(now, decision.ReservedUsd, actualUsd, ref alerts);
        }

        return (IReadOnlyList<BudgetAlert>?)alerts ?? [];
    }

    /// <summary>Restores spend remembered from the store (at start-up) for one rule and key in the window containing now.</summary>
    public void Restore(int ruleIndex, string key, decimal spentUsd, IEnumerable<int> firedThresholds)
    {
        var account = _accounts.GetOrAdd((ruleIndex, key), static (k, r) => new Account(r[k.Rule], k.Key), rules);
        account.Restore(time.GetUtcNow(), spentUsd, firedThresholds);
    }

    public IReadOnlyList<BudgetStatus> Status()
    {
        var now = time.GetUtcNow();
        return _accounts.Values.Select(a => a.Status(now)).OrderBy(s => s.AppliesPer).ThenBy(s => s.Key, StringComparer.Ordinal).ToList();
    }

    internal sealed class Account(BudgetRule rule, string key)
    {
        private readonly Lock _lock = new();
        private readonly HashSet<int> _fired = [];
        private DateTimeOffset _windowStart = DateTimeOffset.MinValue;
        private decimal _spent;
        private decimal _reserved;

        public bool TryReserve(DateTimeOffset now, decimal amount, out decimal spent, out DateTimeOffset resetsAt)
        {
            lock (_lock)
            {
                Roll(now);
                spent = _spent;
                resetsAt = BudgetWindows.EndOf(rule.Window, _windowStart);
                // A budget already used up refuses even a call estimated at zero.
                if (_spent >= rule.LimitUsd || _spent + _reserved + amount > rule.LimitUsd)
                {
                    return false;
                }

                _reserved += amount;
                return true;
            }
        }

        public void ForceReserve(DateTimeOffset now, decimal amount)
        {
            lock (_lock)
            {
                Roll(now);
                _reserved += amount;
            }
        }

        public void Release(decimal amount)
        {
            lock (_lock)
            {
                _reserved = Math.Max(0, _reserved - amount);
            }
        }

        public void Settle(DateTimeOffset now, decimal reserved, decimal actual, ref List<BudgetAlert>? alerts)
        {
            lock (_lock)
            {
                var sameWindow = BudgetWindows.StartOf(rule.Window, now) == _windowStart;
                Roll(now);
                if (sameWindow)
                {
                    _reserved = Math.Max(0, _reserved - reserved);
                }

                _spent += actual;
                if (rule.LimitUsd <= 0)
                {
                    return;
                }

                var percent = _spent / rule.LimitUsd * 100m;
                foreach (var threshold in rule.AlertAt.Order())
                {
                    if (percent >= threshold && _fired.Add(threshold))
                    {
                        (alerts ??= []).Add(new BudgetAlert(rule, key, threshold, _spent, _windowStart, BudgetWindows.EndOf(rule.Window, _windowStart), now));
                    }
                }
            }
        }

        public void Restore(DateTimeOffset now, decimal spent, IEnumerable<int> fired)
        {
            lock (_lock)
            {
                Roll(now);
                _spent = Math.Max(_spent, spent);
                _fired.UnionWith(fired);
            }
        }

        private bool _auditAlerted;

        public bool FirstAuditInWindow(DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(now);
                var first = !_auditAlerted;
                _auditAlerted = true;
                return first;
            }
        }

        public IReadOnlyList<BudgetAlert> Exhausted(DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(now);
                return rule.AlertAt.Where(t => t <= 100).Order().Where(_fired.Add)
                    .Select(t => new BudgetAlert(rule, key, t, _spent, _windowStart, BudgetWindows.EndOf(rule.Window, _windowStart), now))
                    .ToList();
            }
        }

        public BudgetStatus Status(DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(now);
                return new BudgetStatus(rule.AppliesPer, key, rule.LimitUsd, BudgetWindows.Name(rule.Window), _spent, _reserved,
                    _windowStart, BudgetWindows.EndOf(rule.Window, _windowStart), rule.Mode == PolicyMode.Audit ? "audit" : "enforce");
            }
        }

        private void Roll(DateTimeOffset now)
        {
            var start = BudgetWindows.StartOf(rule.Window, now);
            if (start != _windowStart)
            {
                _windowStart = start;
                _spent = 0;
                _reserved = 0;
                _fired.Clear();
                _auditAlerted = false;
            }
        }
    }
}

/// <summary>The budget verdict for one call: the reservations held, or why it was refused.</summary>
internal sealed record BudgetDecision(
    bool IsAllowed, string? Reason, DateTimeOffset? ResetsAt, IReadOnlyList<BudgetLedger.Account> Accounts, decimal ReservedUsd, IReadOnlyList<string>? AuditNotes)
{
    public static BudgetDecision None { get; } = new(true, null, null, [], 0, null);

    /// <summary>Audit-mode refusals to alert: the first per rule, key and window (every one is on the trace).</summary>
    public IReadOnlyList<string>? AuditAlerts { get; init; }

    /// <summary>Alerts raised by the refusal itself.</summary>
    public IReadOnlyList<BudgetAlert> Alerts { get; init; } = [];
}

/// <summary>A threshold crossed: fires once per window.</summary>
internal sealed record BudgetAlert(BudgetRule Rule, string Key, int Threshold, decimal SpentUsd, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, DateTimeOffset At);

/// <summary>One account's state, for the admin API.</summary>
internal sealed record BudgetStatus(string AppliesPer, string Key, decimal LimitUsd, string Window, decimal SpentUsd, decimal ReservedUsd,
    DateTimeOffset WindowStart, DateTimeOffset ResetsAt, string Mode);
