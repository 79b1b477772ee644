using System.Collections.Concurrent;
using Flotilla.Fleet;

namespace Flotilla.Gateway.Routing;

/// <summary>
/// What the gateway has recently seen of each model target, keyed by model name: consecutive failures (for cooldown) and the
/// time per output token (for the latency strategy). Outlives fleet changes. In memory here; a shared store (Redis) can
/// implement the same members so that replicas cool a failing target down together.
/// </summary>
internal interface ITargetHealth
{
    TimeProvider Time { get; }

    bool IsCoolingDown(string model);

    /// <summary>Smoothed milliseconds per output token; NaN until measured.</summary>
    double MsPerToken(string model);

    void RecordSuccess(string model);

    /// <summary>A failure that says something about the target (5xx, 429, no connection, timeout, garbage); not a caller's 4xx.</summary>
    void RecordFailure(string model, CooldownConfig cooldown, TimeSpan? retryAfter);

    void RecordLatency(string model, double milliseconds, long outputTokens);

    IReadOnlyDictionary<string, TargetHealthSnapshot> Snapshot();
}

/// <summary>The in-memory target health of one process.</summary>
/// <param name="cooldownStarted">Told when a target starts cooling down, with when it ends.</param>
/// <param name="cooldownEnded">Told when a target that had cooled down answers again.</param>
internal sealed class TargetHealthBoard(TimeProvider time, Action<string, DateTimeOffset>? cooldownStarted = null, Action<string>? cooldownEnded = null)
    : ITargetHealth
{
    private readonly ConcurrentDictionary<string, TargetHealth> _targets = new(StringComparer.Ordinal);

    public TimeProvider Time => time;

    public TargetHealth For(string model) => _targets.GetOrAdd(model, static _ => new TargetHealth());

    public double MsPerToken(string model) => _targets.TryGetValue(model, out var health) ? health.MsPerToken : double.NaN;

    public bool IsCoolingDown(string model) => _targets.TryGetValue(model, out var health) && health.CoolingUntil > time.GetUtcNow();

    public void RecordSuccess(string model)
    {
        if (For(model).RecordSuccess())
        {
            cooldownEnded?.Invoke(model);
        }
    }

    /// <summary>A failure that says something about the target (5xx, 429, no connection, timeout, garbage); not a caller's 4xx.</summary>
    public void RecordFailure(string model, CooldownConfig cooldown, TimeSpan? retryAfter)
    {
        var now = time.GetUtcNow();
        var health = For(model);
        var wasCooling = health.CoolingUntil > now;
        health.RecordFailure(now, cooldown);
        if (retryAfter is { } wait && wait > TimeSpan.Zero)
        {
            // The upstream said when to come back: honour it, within reason.
            health.CoolUntil(now + TimeSpan.FromTicks(Math.Min(wait.Ticks, TimeSpan.FromMinutes(10).Ticks)));
        }

        if (!wasCooling && health.CoolingUntil > now)
        {
            cooldownStarted?.Invoke(model, health.CoolingUntil);
        }
    }

    public void RecordLatency(string model, double milliseconds, long outputTokens) =>
        For(model).RecordLatency(milliseconds / Math.Max(1, outputTokens));

    public IReadOnlyDictionary<string, TargetHealthSnapshot> Snapshot() =>
        _targets.ToDictionary(p => p.Key, p => p.Value.Snapshot(time.GetUtcNow()));
}

public sealed record TargetHealthSnapshot(int ConsecutiveFailures, DateTimeOffset? CoolingUntil, double? MsPerToken);

internal sealed class TargetHealth
{
    private const double Smoothing = 0.3;
    private readonly Lock _lock = new();
    private int _consecutiveFailures;
    private DateTimeOffset _coolingUntil = DateTimeOffset.MinValue;
    private double _msPerToken = double.NaN;

    public DateTimeOffset CoolingUntil
    {
        get
        {
            lock (_lock)
            {
                return _coolingUntil;
            }
        }
    }

    /// <summary>Exponentially weighted time per output token; NaN until a call has completed.</summary>
    public double MsPerToken
    {
        get
        {
            lock (_lock)
            {
                return _msPerToken;
            }
        }
    }

    /// <summary>Resets the failure count; true when the target had cooled down (it is back in rotation).</summary>
    public bool RecordSuccess()
    {
        lock (_lock)
        {
            var recovered = _coolingUntil != DateTimeOffset.MinValue;
            _consecutiveFailures = 0;
            _coolingUntil = DateTimeOffset.MinValue;
            return recovered;
        }
    }

    public void RecordFailure(DateTimeOffset now, CooldownConfig cooldown)
    {
        lock (_lock)
        {
            _consecutiveFailures++;
            if (_consecutiveFailures >= cooldown.Failures && cooldown.Seconds > 0)
            {
                // Cooled down; after the pause one call probes it again, and a failure there cools it again at once.
                _coolingUntil = now.AddSeconds(cooldown.Seconds);
                _consecutiveFailures = cooldown.Failures - 1;
            }
        }
    }

    public void CoolUntil(DateTimeOffset until)
    {
        lock (_lock)
        {
            if (until > _coolingUntil)
            {
                _coolingUntil = until;
            }
        }
    }

    public void RecordLatency(double msPerToken)
    {
        lock (_lock)
        {
            _msPerToken = double.IsNaN(_msPerToken) ? msPerToken : (Smoothing * msPerToken) + ((1 - Smoothing) * _msPerToken);
        }
    }

    public TargetHealthSnapshot Snapshot(DateTimeOffset now)
    {
        lock (_lock)
        {
            return new TargetHealthSnapshot(_consecutiveFailures, _coolingUntil > now ? _coolingUntil : null, double.IsNaN(_msPerToken) ? null : _msPerToken);
        }
    }
}
