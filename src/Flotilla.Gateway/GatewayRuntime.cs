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
/// The gateway's runtime state for one version of the fleet file: providers, routes, agents and the dispatcher.
/// Immutable; a new fleet version builds a new one and swaps it in (<see cref="FleetState"/>), while target health carries over.
/// </summary>
internal sealed class GatewayRuntime
{
    public GatewayRuntime(FleetConfig fleet, HttpMessageInvoker http, TargetHealthBoard health)
    {
        Fleet = fleet;
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
        RateLimits = new RateLimitBoard(fleet.Gateway.RateLimits, time);
        Budgets = new BudgetLedger(fleet.Gateway.Budgets, time);
        Cache = fleet.Gateway.Caching is { } caching ? new ResponseCache(caching, time) : null;
        Guardrails = new GuardrailEngine(fleet.Gateway.Guardrails, GuardrailHttp, time);
        NeedsTokenEstimate = fleet.Gateway.Budgets.Count > 0
            || fleet.Gateway.RateLimits.Any(r => r.TokensPerMinute is not null || r.TokensPerHour is not null || r.TokensPerDay is not null);
    }

    public RateLimitBoard RateLimits { get; }

    public BudgetLedger Budgets { get; }

    public ResponseCache? Cache { get; }

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

/// <summary>The current <see cref="GatewayRuntime"/>; swapped atomically when the fleet changes.</summary>
public sealed class FleetState
{
    private readonly HttpMessageInvoker _http;
    private readonly TargetHealthBoard _health;
    private volatile GatewayRuntime _current;

    public FleetState(FleetConfig fleet, HttpMessageInvoker http, TimeProvider time)
    {
        _http = http;
        _health = new TargetHealthBoard(time);
        _current = new GatewayRuntime(fleet, http, _health);
    }

    internal GatewayRuntime Current => _current;

    internal TargetHealthBoard Health => _health;

    public FleetConfig Fleet => _current.Fleet;

    public void Apply(FleetConfig fleet) => _current = new GatewayRuntime(fleet, _http, _health);
}
