using System.Collections.Concurrent;
using Flotilla.Fleet;
using Flotilla.Governance.Policy;

namespace Flotilla.Governance.RateLimiting;

/// <summary>
/// Requests and tokens per minute, hour and day for every <c>rate_limits</c> rule, counted in memory with a sliding
/// window (the previous window's count weighted by how much of it still overlaps, plus the current window's count):
/// smooth at window edges, two numbers per key. Tokens are counted as estimated before a call and corrected to the
/// actual count after it.
/// </summary>
public sealed class RateLimitBoard(IReadOnlyList<RateLimitRule> rules, IRateLimitCounters counters, TimeProvider time)
{
    public IReadOnlyList<RateLimitRule> Rules => rules;

    /// <summary>
    /// Counts one request and <paramref name="estimatedTokens"/> against every matching rule, or refuses without
    /// counting anything when one of them is over its limit.
    /// </summary>
    public RateLimitDecision TryAcquire(in CallSubject subject, long estimatedTokens)
    {
        if (rules.Count == 0)
        {
            return RateLimitDecision.Allowed;
        }

        var now = time.GetUtcNow();
        var taken = new List<(RateCounterKey Counter, bool Tokens, long Amount)>(4);
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (subject.KeyFor(rule.AppliesPer) is not { } key)
            {
                continue;
            }

            foreach (var (limit, window, tokens) in Limits(rule))
            {
                var counter = new RateCounterKey(rule.AppliesPer, key, window, tokens);
                var amount = tokens ? estimatedTokens : 1;
                // Two rules that count the same thing share a counter: the call is counted once, and the second rule only
                // checks its own limit against that count.
                var counted = taken.Exists(t => t.Counter == counter);
                // Check and count in one step per counter, so concurrent calls cannot all slip under the same limit.
                if (counters.TryAdd(counter, now, counted ? 0 : amount, limit) is { } retryAfter)
                {
                    foreach (var (earlier, _, earlierAmount) in taken)
                    {
                        counters.Add(earlier, now, -earlierAmount);
                    }

                    var unit = tokens ? "tokens" : "requests";
                    if (amount > limit)
                    {
                        return new RateLimitDecision(false, window,
                            $"This call alone is estimated at {amount} tokens, more than the limit of {limit} tokens per {WindowName(window)} for {rule.AppliesPer} '{key}' (gateway.rate_limits, line {rule.Location.Line}); lower max_tokens or the prompt.",
                            null);
                    }

                    return new RateLimitDecision(false, retryAfter,
                        $"Rate limit reached: {limit} {unit} per {WindowName(window)} for {rule.AppliesPer} '{key}' (gateway.rate_limits, line {rule.Location.Line}). Retry after {Math.Ceiling(retryAfter.TotalSeconds):0} s.",
                        null);
                }

                if (!counted)
                {
                    taken.Add((counter, tokens, amount));
                }
            }
        }

        return taken.Count == 0
            ? RateLimitDecision.Allowed
            : new RateLimitDecision(true, TimeSpan.Zero, null, taken.Where(c => c.Tokens).Select(c => c.Counter).ToList()) { Tokens = estimatedTokens };
    }

    /// <summary>
    /// Counts one MCP tool call against every rule with <c>tool_calls_per_minute</c> that applies to it, or refuses without
    /// counting when one is full. Tool calls have their own counters (their scope is prefixed <c>tool_calls:</c>), so model
    /// requests and tool calls never count against each other's limits.
    /// </summary>
    public RateLimitDecision TryAcquireToolCall(in CallSubject subject)
    {
        var now = time.GetUtcNow();
        var taken = new List<RateCounterKey>(2);
        foreach (var rule in rules)
        {
            if (rule.ToolCallsPerMinute is not { } limit || subject.KeyFor(rule.AppliesPer) is not { } key)
            {
                continue;
            }

            var counter = new RateCounterKey("tool_calls:" + rule.AppliesPer, key, TimeSpan.FromMinutes(1), false);
            var counted = taken.Contains(counter);
            if (counters.TryAdd(counter, now, counted ? 0 : 1, limit) is { } retryAfter)
            {
                foreach (var earlier in taken)
                {
                    counters.Add(earlier, now, -1);
                }

                return new RateLimitDecision(false, retryAfter,
                    $"Rate limit reached: {limit} tool calls per minute for {rule.AppliesPer} '{key}' (gateway.rate_limits, line {rule.Location.Line}). Retry after {Math.Ceiling(retryAfter.TotalSeconds):0} s.",
                    null);
            }

            if (!counted)
            {
                taken.Add(counter);
            }
        }

        return RateLimitDecision.Allowed;
    }

    /// <summary>After the call: replaces the token estimate with the actual count.</summary>
    public void Reconcile(RateLimitDecision decision, long actualTokens)
    {
        var estimatedTokens = decision.Tokens;
        if (decision.TokenCounters is not { Count: > 0 } tokenCounters || actualTokens == estimatedTokens)
        {
            return;
        }

        var now = time.GetUtcNow();
        foreach (var counter in tokenCounters)
        {
            counters.Add(counter, now, actualTokens - estimatedTokens);
        }
    }

    private static IEnumerable<(long Limit, TimeSpan Window, bool Tokens)> Limits(RateLimitRule rule)
    {
        if (rule.RequestsPerMinute is { } rpm) yield return (rpm, TimeSpan.FromMinutes(1), false);
        if (rule.RequestsPerHour is { } rph) yield return (rph, TimeSpan.FromHours(1), false);
        if (rule.RequestsPerDay is { } rpd) yield return (rpd, TimeSpan.FromDays(1), false);
        if (rule.TokensPerMinute is { } tpm) yield return (tpm, TimeSpan.FromMinutes(1), true);
        if (rule.TokensPerHour is { } tph) yield return (tph, TimeSpan.FromHours(1), true);
        if (rule.TokensPerDay is { } tpd) yield return (tpd, TimeSpan.FromDays(1), true);
    }

    private static string WindowName(TimeSpan window) =>
        window == TimeSpan.FromMinutes(1) ? "minute" : window == TimeSpan.FromHours(1) ? "hour" : "day";

}

/// <summary>
/// One counter: what is counted (<paramref name="AppliesPer"/> and the caller's <paramref name="Key"/>), over which window,
/// requests or tokens. Not tied to a rule's position in the file: two rules that count the same thing share a counter, and
/// an apply that changes a limit keeps the count.
/// </summary>
public readonly record struct RateCounterKey(string AppliesPer, string Key, TimeSpan Window, bool Tokens);

/// <summary>
/// The counters behind rate limits. They outlive any one version of the fleet. In memory here; a shared store (Redis) can
/// implement the same two members for several replicas.
/// </summary>
public interface IRateLimitCounters
{
    /// <summary>Counts <paramref name="amount"/> and returns null when it fits under <paramref name="limit"/>; otherwise counts nothing and returns how long until it would.</summary>
    TimeSpan? TryAdd(in RateCounterKey key, DateTimeOffset now, long amount, long limit);

    /// <summary>Adds (or, negative, takes back) <paramref name="amount"/> without a limit.</summary>
    void Add(in RateCounterKey key, DateTimeOffset now, long amount);
}

/// <summary>The in-memory counters of one process.</summary>
public sealed class RateLimitCounters : IRateLimitCounters
{
    private readonly ConcurrentDictionary<RateCounterKey, SlidingCounter> _counters = new();

    public TimeSpan? TryAdd(in RateCounterKey key, DateTimeOffset now, long amount, long limit) => For(key).TryAdd(now, amount, limit);

    public void Add(in RateCounterKey key, DateTimeOffset now, long amount) => For(key).Add(now, amount);

    private SlidingCounter For(in RateCounterKey key) => _counters.GetOrAdd(key, static k => new SlidingCounter(k.Window));

    /// <summary>Two fixed windows aligned to UTC; the estimate over the trailing window weights the previous one by its overlap.</summary>
    internal sealed class SlidingCounter(TimeSpan window)
    {
        private readonly Lock _lock = new();
        private long _windowStart = long.MinValue;
        private long _current;
        private long _previous;

        /// <summary>Counts <paramref name="amount"/> and returns null when it fits; otherwise counts nothing and returns how long until it would.</summary>
        public TimeSpan? TryAdd(DateTimeOffset now, long amount, long limit)
        {
            lock (_lock)
            {
                Roll(now);
                var elapsed = (double)(now.UtcTicks - _windowStart) / window.Ticks;
                var used = (_previous * (1 - elapsed)) + _current;
                if (used + amount <= limit)
                {
                    _current += amount;
                    return null;
                }

                if (amount > limit)
                {
                    // Can never fit in one window: say when the window has fully turned over.
                    return TimeSpan.FromTicks(window.Ticks - (now.UtcTicks - _windowStart) + window.Ticks);
                }

                // The previous window's weight drains linearly; find when enough has drained, else wait for the next window.
                var excess = used + amount - limit;
                var remaining = window.Ticks - (now.UtcTicks - _windowStart);
                if (_previous > 0)
                {
                    var ticks = excess / _previous * window.Ticks;
                    if (ticks <= remaining)
                    {
                        return TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, (long)Math.Ceiling(ticks)));
                    }
                }

                // In the next window the current count becomes the previous one and drains from there.
                var afterTurn = _current + amount - limit;
                var extra = _current > 0 && afterTurn > 0 ? (double)afterTurn / _current * window.Ticks : 0;
                return TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond, remaining + (long)Math.Ceiling(extra)));
            }
        }

        public void Add(DateTimeOffset now, long amount)
        {
            lock (_lock)
            {
                Roll(now);
                _current = Math.Max(0, _current + amount);
            }
        }

        private void Roll(DateTimeOffset now)
        {
            var start = now.UtcTicks - (now.UtcTicks % window.Ticks);
            if (start == _windowStart)
            {
                return;
            }

            _previous = start - _windowStart == window.Ticks ? _current : 0;
            _current = 0;
            _windowStart = start;
        }
    }
}

/// <summary>Whether a call may go ahead; when not, how long to wait and why.</summary>
public sealed record RateLimitDecision(bool IsAllowed, TimeSpan RetryAfter, string? Reason, IReadOnlyList<RateCounterKey>? TokenCounters)
{
    public static RateLimitDecision Allowed { get; } = new(true, TimeSpan.Zero, null, null);

    /// <summary>The tokens counted for the call when it was let through; settling replaces them with what it used.</summary>
    public long Tokens { get; init; }
}
