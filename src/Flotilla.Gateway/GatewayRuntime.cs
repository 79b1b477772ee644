using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Gateway.Budgets;
using Flotilla.Guardrails;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Providers.Anthropic;
using Flotilla.Gateway.Providers.OpenAI;
using Flotilla.Gateway.Providers.Simulated;
using Flotilla.Gateway.RateLimiting;
using Flotilla.Gateway.Routing;

namespace Flotilla.Gateway;

/// <summary>
/// The gateway for one version of the fleet file: providers, routes, agents, the dispatcher and the policies built from
/// its rules. Immutable; an apply builds a new one and swaps it in (<see cref="FleetState"/>). The policies' state (spend,
/// counters, cached answers, target health) lives in <see cref="GatewayState"/>, which every version shares.
/// </summary>
internal sealed class GatewayRuntime
{
    public GatewayRuntime(FleetConfig fleet, HttpMessageInvoker http, GatewayState state, int revision)
    {
        Fleet = fleet;
        Revision = revision;
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
        Agents = fleet.Agents.ToFrozenDictionary(a => a.Name, StringComparer.Ordinal);
        RequestTimeout = TimeSpan.FromMilliseconds(fleet.Gateway.Routing.RequestTimeoutMs);
        RateLimits = new RateLimitBoard(fleet.Gateway.RateLimits, state.RateCounters, time);
        Budgets = new BudgetLedger(fleet.Gateway.Budgets, state.BudgetAccounts, time);
        Cache = fleet.Gateway.Caching is { } caching ? state.CacheFor(caching) : null;
        Guardrails = new GuardrailEngine(fleet.Gateway.Guardrails, GuardrailHttp, time);
        NeedsTokenEstimate = fleet.Gateway.Budgets.Count > 0
            || fleet.Gateway.RateLimits.Any(r => r.TokensPerMinute is not null || r.TokensPerHour is not null || r.TokensPerDay is not null);
    }

    public RateLimitBoard RateLimits { get; }

    public BudgetLedger Budgets { get; }

    public IResponseCache? Cache { get; }

    /// <summary>The fleet revision this runtime was built from (1 for the fleet loaded at start when none was stored).</summary>
    public int Revision { get; }

    public GuardrailEngine Guardrails { get; }

    /// <summary>For webhook guardrails; each guardrail applies its own timeout.</summary>
    private static readonly HttpClient GuardrailHttp = UpstreamHttp.CreateWebhookClient(Timeout.InfiniteTimeSpan);

    /// <summary>Token estimates cost a tokenizer pass; only budgets and token rate limits need them.</summary>
    public bool NeedsTokenEstimate { get; }

    public FleetConfig Fleet { get; }

    public RouteTable Routes { get; }

    public CallDispatcher Dispatcher { get; }

    public FrozenDictionary<string, AgentConfig> Agents { get; }

    public TimeSpan RequestTimeout { get; }

    public long MaxRequestBodyBytes => Fleet.Gateway.Limits.MaxRequestBodyBytes;
}

/// <summary>
/// Policy state that outlives configuration: target health, budget accounts, rate-limit counters and the response cache.
/// One per process; every <see cref="GatewayRuntime"/> reads and writes the same objects.
/// </summary>
internal sealed class GatewayState(TimeProvider time, Action<string, DateTimeOffset>? cooldownStarted = null)
{
    private readonly Lock _cacheLock = new();
    private ResponseCache? _cache;

    public TargetHealthBoard Health { get; } = new(time, cooldownStarted);

    public IBudgetAccounts BudgetAccounts { get; } = new BudgetAccounts();

    public IRateLimitCounters RateCounters { get; } = new RateLimitCounters();

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
/// The current <see cref="GatewayRuntime"/>, swapped atomically when the fleet changes: a call reads it once at its start
/// and finishes on that version, whatever is applied meanwhile.
/// </summary>
public sealed partial class FleetState
{
    private readonly HttpMessageInvoker _http;
    private readonly GatewayState _state;
    private volatile GatewayRuntime _current;

    /// <param name="metrics">Counts target cooldowns; optional.</param>
    /// <param name="logger">Logs when a target starts cooling down (Information); optional.</param>
    public FleetState(FleetConfig fleet, HttpMessageInvoker http, TimeProvider time, Telemetry.GatewayMetrics? metrics = null,
        Microsoft.Extensions.Logging.ILogger<FleetState>? logger = null)
    {
        _http = http;
        _state = new GatewayState(time, (target, until) =>
        {
            metrics?.CooldownStarted(target);
            if (logger is not null)
            {
                LogCooldown(logger, target, until);
            }
        });
        _current = new GatewayRuntime(fleet, http, _state, revision: 0);
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Level = Microsoft.Extensions.Logging.LogLevel.Information,
        Message = "Target {Target} is cooling down until {Until:u} after repeated failures; calls go to the next target of their plan")]
    private static partial void LogCooldown(Microsoft.Extensions.Logging.ILogger logger, string target, DateTimeOffset until);

    internal GatewayRuntime Current => _current;

    internal GatewayState State => _state;

    internal TargetHealthBoard Health => _state.Health;

    public FleetConfig Fleet => _current.Fleet;

    /// <summary>The revision in force (0 until the fleet loaded at start is recorded).</summary>
    public int Revision => _current.Revision;

    /// <summary>Puts <paramref name="fleet"/> in force as <paramref name="revision"/>; spend, counters, cache and health carry over.</summary>
    public void Apply(FleetConfig fleet, int revision) => _current = new GatewayRuntime(fleet, _http, _state, revision);
}
