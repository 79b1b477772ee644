using System.Collections.Concurrent;
using Flotilla.Fleet;
using Flotilla.Governance.Policy;

namespace Flotilla.Governance.Budgets;

/// <summary>
/// Spend per <c>budgets</c> rule and key, in the rule's current UTC window. Before a call, a worst-case reservation
/// (estimated input tokens and <c>max_tokens</c> at the route's dearest price) is taken against every matching rule, or
/// the call is refused when any enforcing rule cannot cover it; after the call the reservation is replaced by the
/// actual cost. Concurrent calls therefore cannot overshoot a budget by more than one call's underestimate.
/// Thresholds in <c>alert_at</c> fire once per window.
/// </summary>
public sealed class BudgetLedger(IReadOnlyList<BudgetRule> rules, IBudgetAccounts accounts, TimeProvider time)
{
    public IReadOnlyList<BudgetRule> Rules => rules;

    /// <summary>Reserves <paramref name="worstCaseUsd"/> against every matching rule, or refuses.</summary>
    /// <summary>Whether <paramref name="worstCaseUsd"/> fits under every budget that applies, now; reserves nothing.</summary>
    public bool Fits(in CallSubject subject, decimal worstCaseUsd)
    {
        var now = time.GetUtcNow();
        foreach (var rule in rules)
        {
            if (subject.KeyFor(rule.AppliesPer) is { } key && !accounts.For(rule.Name, key).Fits(rule, now, worstCaseUsd))
            {
                return false;
            }
        }

        return true;
    }

    public BudgetDecision TryReserve(in CallSubject subject, decimal worstCaseUsd)
    {
        if (rules.Count == 0)
        {
            return BudgetDecision.None;
        }

        var now = time.GetUtcNow();
        var held = new List<(BudgetRule, IBudgetAccount)>(rules.Count);
        List<string>? auditNotes = null;
        List<string>? auditAlerts = null;
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (subject.KeyFor(rule.AppliesPer) is not { } key)
            {
                continue;
            }

            var account = accounts.For(rule.Name, key);
            if (account.TryReserve(rule, now, worstCaseUsd, out var spent, out var resetsAt))
            {
                held.Add((rule, account));
                continue;
            }

            var message = $"Budget exhausted: {rule.AppliesPer} '{key}' has spent ${spent:0.####} of ${rule.LimitUsd:0.##} per {BudgetWindows.Name(rule.Window)} " +
                $"(gateway.budgets '{rule.Name}', line {rule.Location.Line}); it resets at {resetsAt:yyyy-MM-ddTHH:mm:ssZ}.";
            if (rule.Mode == PolicyMode.Audit)
            {
                // Audit: record what would have been refused, let the call through and count its spend.
                (auditNotes ??= []).Add(message);
                if (account.FirstAuditInWindow(rule, now))
                {
                    (auditAlerts ??= []).Add(message);
                }

                account.ForceReserve(rule, now, worstCaseUsd);
                held.Add((rule, account));
                continue;
            }

            foreach (var (_, earlier) in held)
            {
                earlier.Release(worstCaseUsd);
            }

            // A refused call means the budget is used up for practical purposes: thresholds up to 100 % not yet alerted fire now.
            return new BudgetDecision(false, message, resetsAt, [], worstCaseUsd, auditNotes) { Alerts = account.Exhausted(rule, key, now), AuditAlerts = auditAlerts };
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
        foreach (var (rule, account) in decision.Accounts)
        {
            account.Settle(rule, now, decision.ReservedUsd, actualUsd, ref alerts);
        }

        return (IReadOnlyList<BudgetAlert>?)alerts ?? [];
    }

    /// <summary>Restores spend remembered from the store (at start-up) for one rule and key in the window containing now.</summary>
    public void Restore(BudgetRule rule, string key, decimal spentUsd, IEnumerable<int> firedThresholds) =>
        accounts.For(rule.Name, key).Restore(rule, time.GetUtcNow(), spentUsd, firedThresholds);

    /// <summary>Every account of the current rules, in its current window.</summary>
    public IReadOnlyList<BudgetStatus> Status()
    {
        var now = time.GetUtcNow();
        return rules.SelectMany(rule => accounts.Of(rule.Name).Select(a => a.Status(rule, now)))
            .OrderBy(s => s.AppliesPer).ThenBy(s => s.Key, StringComparer.Ordinal).ToList();
    }
}

/// <summary>
/// Spend accounts by rule name and key. They outlive any one version of the fleet: an apply swaps the rules, not the
/// accounts, so spend, reservations and alerted thresholds carry over. In memory here; a shared store (Redis) can
/// implement the same two members for several replicas.
/// </summary>
public interface IBudgetAccounts
{
    IBudgetAccount For(string rule, string key);

    IEnumerable<IBudgetAccount> Of(string rule);
}

/// <summary>One rule's spend for one key in its current window. The rule is passed in, so a changed limit applies at once.</summary>
public interface IBudgetAccount
{
    string Key { get; }

    bool TryReserve(BudgetRule rule, DateTimeOffset now, decimal amount, out decimal spent, out DateTimeOffset resetsAt);

    bool Fits(BudgetRule rule, DateTimeOffset now, decimal amount);

    void ForceReserve(BudgetRule rule, DateTimeOffset now, decimal amount);

    void Release(decimal amount);

    void Settle(BudgetRule rule, DateTimeOffset now, decimal reserved, decimal actual, ref List<BudgetAlert>? alerts);

    void Restore(BudgetRule rule, DateTimeOffset now, decimal spent, IEnumerable<int> fired);

    bool FirstAuditInWindow(BudgetRule rule, DateTimeOffset now);

    IReadOnlyList<BudgetAlert> Exhausted(BudgetRule rule, string key, DateTimeOffset now);

    BudgetStatus Status(BudgetRule rule, DateTimeOffset now);
}

/// <summary>The in-memory accounts of one process.</summary>
public sealed class BudgetAccounts : IBudgetAccounts
{
    private readonly ConcurrentDictionary<(string Rule, string Key), Account> _accounts = new();

    public IBudgetAccount For(string rule, string key) => _accounts.GetOrAdd((rule, key), static k => new Account(k.Key));

    public IEnumerable<IBudgetAccount> Of(string rule) => _accounts.Where(a => a.Key.Rule == rule).Select(a => a.Value);

    private sealed class Account(string key) : IBudgetAccount
    {
        private readonly Lock _lock = new();
        private readonly HashSet<int> _fired = [];
        private DateTimeOffset _windowStart = DateTimeOffset.MinValue;
        private BudgetWindow _window;
        private decimal _spent;
        private decimal _reserved;
        private bool _auditAlerted;

        public string Key => key;

        public bool Fits(BudgetRule rule, DateTimeOffset now, decimal amount)
        {
            lock (_lock)
            {
                Roll(rule, now);
                return HasRoom(rule, amount);
            }
        }

        public bool TryReserve(BudgetRule rule, DateTimeOffset now, decimal amount, out decimal spent, out DateTimeOffset resetsAt)
        {
            lock (_lock)
            {
                Roll(rule, now);
                spent = _spent;
                resetsAt = BudgetWindows.EndOf(rule.Window, _windowStart);
                if (!HasRoom(rule, amount))
                {
                    return false;
                }

                _reserved += amount;
                return true;
            }
        }

        /// <summary>Whether <paramref name="amount"/> fits beside what is spent and reserved; a budget already used up refuses even a call estimated at zero. Under the lock.</summary>
        private bool HasRoom(BudgetRule rule, decimal amount) => _spent < rule.LimitUsd && _spent + _reserved + amount <= rule.LimitUsd;

        public void ForceReserve(BudgetRule rule, DateTimeOffset now, decimal amount)
        {
            lock (_lock)
            {
                Roll(rule, now);
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

        public void Settle(BudgetRule rule, DateTimeOffset now, decimal reserved, decimal actual, ref List<BudgetAlert>? alerts)
        {
            lock (_lock)
            {
                if (rule.Window != _window && _windowStart != DateTimeOffset.MinValue)
                {
                    // A call that started before an apply changed this budget's window settles under its old rule: count
                    // what it spent in the current window rather than roll the account back to the old one.
                    _spent += actual;
                    return;
                }

                var sameWindow = BudgetWindows.StartOf(rule.Window, now) == _windowStart;
                Roll(rule, now);
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

        public void Restore(BudgetRule rule, DateTimeOffset now, decimal spent, IEnumerable<int> fired)
        {
            lock (_lock)
            {
                Roll(rule, now);
                _spent = Math.Max(_spent, spent);
                _fired.UnionWith(fired);
            }
        }

        public bool FirstAuditInWindow(BudgetRule rule, DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(rule, now);
                var first = !_auditAlerted;
                _auditAlerted = true;
                return first;
            }
        }

        public IReadOnlyList<BudgetAlert> Exhausted(BudgetRule rule, string key, DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(rule, now);
                return rule.AlertAt.Where(t => t <= 100).Order().Where(_fired.Add)
                    .Select(t => new BudgetAlert(rule, key, t, _spent, _windowStart, BudgetWindows.EndOf(rule.Window, _windowStart), now))
                    .ToList();
            }
        }

        public BudgetStatus Status(BudgetRule rule, DateTimeOffset now)
        {
            lock (_lock)
            {
                Roll(rule, now);
                return new BudgetStatus(rule.AppliesPer, key, rule.LimitUsd, BudgetWindows.Name(rule.Window), _spent, _reserved,
                    _windowStart, BudgetWindows.EndOf(rule.Window, _windowStart), rule.Mode == PolicyMode.Audit ? "audit" : "enforce", rule.Name);
            }
        }

        /// <summary>A new window (or a rule whose window changed under the same name) starts from zero.</summary>
        private void Roll(BudgetRule rule, DateTimeOffset now)
        {
            var start = BudgetWindows.StartOf(rule.Window, now);
            if (start != _windowStart || rule.Window != _window)
            {
                _windowStart = start;
                _window = rule.Window;
                _spent = 0;
                _reserved = 0;
                _fired.Clear();
                _auditAlerted = false;
            }
        }
    }
}

/// <summary>The budget verdict for one call: the reservations held, or why it was refused.</summary>
public sealed record BudgetDecision(
    bool IsAllowed, string? Reason, DateTimeOffset? ResetsAt, IReadOnlyList<(BudgetRule Rule, IBudgetAccount Account)> Accounts, decimal ReservedUsd,
    IReadOnlyList<string>? AuditNotes)
{
    public static BudgetDecision None { get; } = new(true, null, null, [], 0, null);

    /// <summary>Audit-mode refusals to alert: the first per rule, key and window (every one is on the trace).</summary>
    public IReadOnlyList<string>? AuditAlerts { get; init; }

    /// <summary>Alerts raised by the refusal itself.</summary>
    public IReadOnlyList<BudgetAlert> Alerts { get; init; } = [];
}

/// <summary>A threshold crossed: fires once per window.</summary>
public sealed record BudgetAlert(BudgetRule Rule, string Key, int Threshold, decimal SpentUsd, DateTimeOffset WindowStart, DateTimeOffset WindowEnd, DateTimeOffset At);

/// <summary>One account's state, for the admin API.</summary>
public sealed record BudgetStatus(string AppliesPer, string Key, decimal LimitUsd, string Window, decimal SpentUsd, decimal ReservedUsd,
    DateTimeOffset WindowStart, DateTimeOffset ResetsAt, string Mode, string Rule);
