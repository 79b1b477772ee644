using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Governance.Budgets;
using Flotilla.Governance.Http;
using Flotilla.Governance.RateLimiting;
using Flotilla.Guardrails;

namespace Flotilla.Governance.Fleet;

/// <summary>
/// One version of the fleet in force: the configuration, its revision, the registered agents, and the policies built from its
/// rules (rate limits, budgets, guardrails). Immutable. The policies' state lives in <see cref="PolicyState"/>, which every
/// version shares, so an apply changes the rules and keeps what was counted.
/// </summary>
public sealed class FleetSnapshot
{
    /// <summary>For webhook guardrails; each guardrail applies its own timeout.</summary>
    private static readonly HttpClient GuardrailHttp = OutboundHttp.CreateWebhookClient(Timeout.InfiniteTimeSpan);

    internal FleetSnapshot(FleetConfig config, int revision, PolicyState state, TimeProvider time)
    {
        Config = config;
        Revision = revision;
        Agents = config.Agents.ToFrozenDictionary(a => a.Name, StringComparer.Ordinal);
        RateLimits = new RateLimitBoard(config.Gateway.RateLimits, state.RateCounters, time);
        Budgets = new BudgetLedger(config.Gateway.Budgets, state.BudgetAccounts, time);
        Guardrails = new GuardrailEngine(config.Gateway.Guardrails, GuardrailHttp, time);
        NeedsTokenEstimate = config.Gateway.Budgets.Count > 0
            || config.Gateway.RateLimits.Any(r => r.TokensPerMinute is not null || r.TokensPerHour is not null || r.TokensPerDay is not null);
    }

    public FleetConfig Config { get; }

    /// <summary>The fleet revision this snapshot is (0 until the fleet loaded at start is recorded).</summary>
    public int Revision { get; }

    public FrozenDictionary<string, AgentConfig> Agents { get; }

    public RateLimitBoard RateLimits { get; }

    public BudgetLedger Budgets { get; }

    public GuardrailEngine Guardrails { get; }

    /// <summary>Token estimates cost a tokenizer pass; only budgets and token rate limits need them.</summary>
    public bool NeedsTokenEstimate { get; }
}

/// <summary>
/// Policy state that outlives configuration: budget accounts and rate-limit counters. In memory here; shared stores (Redis)
/// can implement <see cref="IBudgetAccounts"/> and <see cref="IRateLimitCounters"/> for several replicas.
/// </summary>
public sealed class PolicyState
{
    public IBudgetAccounts BudgetAccounts { get; } = new BudgetAccounts();

    public IRateLimitCounters RateCounters { get; } = new RateLimitCounters();
}

/// <summary>
/// The fleet in force, swapped atomically when the fleet changes: a call reads <see cref="Current"/> once at its start and
/// finishes on that version, whatever is applied meanwhile. Every gateway (model, MCP) and the harness read it.
/// </summary>
public sealed class LiveFleet(FleetConfig fleet, TimeProvider time)
{
    private readonly PolicyState _state = new();
    private FleetSnapshot? _current;

    public FleetSnapshot Current => Volatile.Read(ref _current) ?? Initial();

    public PolicyState State => _state;

    public FleetConfig Fleet => Current.Config;

    public int Revision => Current.Revision;

    /// <summary>Raised after a version is put in force, on the applying thread; for parts that hold resources per version
    /// (the MCP gateway's upstream connections). Handlers must be quick and must not throw.</summary>
    public event Action<FleetSnapshot>? Applied;

    /// <summary>Puts <paramref name="config"/> in force as <paramref name="revision"/>; what policies have counted carries over.</summary>
    public void Apply(FleetConfig config, int revision)
    {
        var snapshot = new FleetSnapshot(config, revision, _state, time);
        Volatile.Write(ref _current, snapshot);
        Applied?.Invoke(snapshot);
    }

    private FleetSnapshot Initial()
    {
        Interlocked.CompareExchange(ref _current, new FleetSnapshot(fleet, 0, _state, time), null);
        return _current!;
    }
}
