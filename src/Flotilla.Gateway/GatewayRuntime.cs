using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Guardrails;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Providers.Anthropic;
using Flotilla.Gateway.Providers.OpenAI;
using Flotilla.Gateway.Providers.Simulated;
using Flotilla.Gateway.Routing;
using Flotilla.Governance.Budgets;
using Flotilla.Governance.Fleet;
using Flotilla.Governance.RateLimiting;

namespace Flotilla.Gateway;

/// <summary>
/// The model gateway for one version of the fleet: providers, routes and the dispatcher built from a <see cref="FleetSnapshot"/>,
/// whose policies (rate limits, budgets, guardrails) and agents it exposes. Immutable; built once per snapshot. Target health
/// and the response cache live in <see cref="GatewayState"/>, which every version shares.
/// </summary>
internal sealed class GatewayRuntime
{
    public GatewayRuntime(FleetSnapshot snapshot, HttpMessageInvoker http, GatewayState state)
    {
        Snapshot = snapshot;
        var fleet = snapshot.Config;
        var health = state.Health;
        var time = health.Time;
        var providers = fleet.Gateway.Providers.ToFrozenDictionary(
            p => p.Name,
            p => p.Type switch
            {
                ProviderType.OpenAI => (IModelProvider)new OpenAIProvider(p, http, time),
                ProviderType.Anthropic => new AnthropicProvider(p, http, time),
                _ => new SimulatedProvider(p, time),
            },
            StringComparer.Ordinal);
        Routes = new RouteTable(fleet.Gateway, providers);
        Dispatcher = new CallDispatcher(health, fleet.Gateway.Routing);
        RequestTimeout = TimeSpan.FromMilliseconds(fleet.Gateway.Routing.RequestTimeoutMs);
        Cache = fleet.Gateway.Caching is { } caching ? state.CacheFor(caching) : null;
        // Cached answers passed the output guardrails in force when they were stored; a fleet with other output guardrails
        // must not be served them unchecked, so the guardrails are part of the cache namespace.
        CacheScope = fleet.Gateway.Guardrails.LlmOutput.Count == 0 ? "" : "|out:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(string.Join("\n", fleet.Gateway.Guardrails.LlmOutput.Select(g =>
                $"{g.Type}|{g.Name}|{g.Action}|{g.Threshold}|{g.Url}|{g.FailOpen}|{string.Join("\u0001", g.Patterns)}")))).AsSpan(0, 8));
    }

    /// <summary>Added to every cache namespace: which output guardrails the cached answers passed.</summary>
    public string CacheScope { get; }

    public FleetSnapshot Snapshot { get; }

    public FleetConfig Fleet => Snapshot.Config;

    public int Revision => Snapshot.Revision;

    public FrozenDictionary<string, AgentConfig> Agents => Snapshot.Agents;

    public RateLimitBoard RateLimits => Snapshot.RateLimits;

    public BudgetLedger Budgets => Snapshot.Budgets;

    public GuardrailEngine Guardrails => Snapshot.Guardrails;

    public bool NeedsTokenEstimate => Snapshot.NeedsTokenEstimate;

    public IResponseCache? Cache { get; }

    public RouteTable Routes { get; }

    public CallDispatcher Dispatcher { get; }

    public TimeSpan RequestTimeout { get; }

    public long MaxRequestBodyBytes => Fleet.Gateway.Limits.MaxRequestBodyBytes;
}

/// <summary>
/// Gateway state that outlives configuration: target health and the response cache. One per process; every
/// <see cref="GatewayRuntime"/> reads and writes the same objects.
/// </summary>
internal sealed class GatewayState(TimeProvider time, Action<string, DateTimeOffset>? cooldownStarted = null, Action<string>? cooldownEnded = null)
{
    private readonly Lock _cacheLock = new();
    private ResponseCache? _cache;

    public ITargetHealth Health { get; } = new TargetHealthBoard(time, cooldownStarted, cooldownEnded);

    /// <summary>The one response cache, made on first use and given the fleet's current settings (entries are kept).</summary>
    public IResponseCache CacheFor(CachingConfig config)
    {
        lock (_cacheLock)
        {
            if (_cache is null)
            {
                _cache = new ResponseCache(config, time);
            }
            else
            {
                _cache.Config = config;
            }

            return _cache;
        }
    }
}

/// <summary>
/// The model gateway's view of the live fleet: the <see cref="GatewayRuntime"/> for the snapshot in force, built when a new
/// snapshot appears (one volatile read and a reference compare per call otherwise). A call reads it once at its start.
/// </summary>
public sealed partial class FleetState
{
    private readonly LiveFleet _live;
    private readonly HttpMessageInvoker _http;
    private readonly GatewayState _state;
    private readonly Lock _buildLock = new();
    private volatile GatewayRuntime _current;

    /// <param name="metrics">Counts target cooldowns; optional.</param>
    /// <param name="logger">Logs when a target starts cooling down (Information); optional.</param>
    public FleetState(LiveFleet live, HttpMessageInvoker http, TimeProvider time, Telemetry.GatewayMetrics? metrics = null,
        Microsoft.Extensions.Logging.ILogger<FleetState>? logger = null)
    {
        _live = live;
        _http = http;
        _state = new GatewayState(time, (target, until) =>
        {
            metrics?.CooldownStarted(target);
            if (logger is not null)
            {
                LogCooldown(logger, target, until);
            }
        }, target =>
        {
            if (logger is not null)
            {
                LogRecovered(logger, target);
            }
        });
        _current = new GatewayRuntime(live.Current, http, _state);
    }

    /// <summary>For tests and tools: a gateway on its own live fleet.</summary>
    public FleetState(FleetConfig fleet, HttpMessageInvoker http, TimeProvider time)
        : this(new LiveFleet(fleet, time), http, time)
    {
    }

    internal GatewayRuntime Current
    {
        get
        {
            var runtime = _current;
            var snapshot = _live.Current;
            if (ReferenceEquals(runtime.Snapshot, snapshot))
            {
                return runtime;
            }

            lock (_buildLock)
            {
                // Read again under the lock: a slower thread must not put back a runtime for a snapshot already replaced.
                snapshot = _live.Current;
                if (!ReferenceEquals(_current.Snapshot, snapshot))
                {
                    _current = new GatewayRuntime(snapshot, _http, _state);
                }

                return _current;
            }
        }
    }

    public LiveFleet Live => _live;

    internal GatewayState State => _state;

    internal ITargetHealth Health => _state.Health;

    /// <summary>Each model target's consecutive failures, cooldown end and time per output token, by model name.</summary>
    public IReadOnlyDictionary<string, TargetHealthSnapshot> TargetHealth() => _state.Health.Snapshot();

    public FleetConfig Fleet => _live.Fleet;

    public int Revision => _live.Revision;

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Information,
        Message = "Target {Target} is cooling down until {Until:u} after repeated failures; calls go to the next target of their plan")]
    private static partial void LogCooldown(Microsoft.Extensions.Logging.ILogger logger, string target, DateTimeOffset until);

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Information,
        Message = "Target {Target} answered again after its cooldown; it is back in rotation")]
    private static partial void LogRecovered(Microsoft.Extensions.Logging.ILogger logger, string target);
}
