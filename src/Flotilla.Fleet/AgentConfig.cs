namespace Flotilla.Fleet;

/// <summary>A registered loop: who owns it, what it may use, how it runs.</summary>
/// <param name="Owner">The owning team; budgets and cost roll up by it.</param>
/// <param name="Model">A virtual model or model name; the gateway default when absent.</param>
/// <param name="Instructions">Pinned instructions, <c>PATH@VERSION</c>.</param>
/// <param name="Skills">Pinned skills, <c>NAME@VERSION</c>.</param>
/// <param name="McpServers">MCP grants: servers, optionally narrowed to some tools.</param>
/// <param name="Subagents">Agents this loop may delegate to (one level deep).</param>
/// <param name="Owns">Artifacts this loop owns; no other loop may claim them.</param>
public sealed record AgentConfig(
    string Name,
    string Owner,
    string? Description,
    string? Model,
    VersionedRef? Instructions,
    IReadOnlyList<VersionedRef> Skills,
    IReadOnlyList<McpGrant> McpServers,
    IReadOnlyList<string> Subagents,
    HarnessConfig Harness,
    TriggerConfig? Trigger,
    IReadOnlyList<string> Owns,
    IReadOnlyDictionary<string, string> Metadata,
    SourceLocation Location)
{
    /// <summary>maker (the default) or checker; a checker may hold only read grants.</summary>
    public AgentRole Role { get; init; } = AgentRole.Maker;

    /// <summary>The agent that grades this one's work; it must hold only read grants.</summary>
    public string? Checker { get; init; }

    /// <summary>Instructions written in the fleet file itself (any <c>instructions</c> value that is not a file reference).</summary>
    public string? InlineInstructions { get; init; }

    /// <summary>Revision rounds a failed check sends the maker back for (<c>checker: { agent, revisions }</c>). Default 1.</summary>
    public int CheckerRevisions { get; init; } = 1;
}

/// <summary>What a loop is for, as far as its grants are concerned.</summary>
public enum AgentRole
{
    Maker,

    /// <summary>Grades another loop's work: may hold no write grant, so an injection that reaches it cannot act.</summary>
    Checker,
}

/// <summary>A pinned artifact reference such as <c>./triage.md@v6</c> or <c>triage-runbook@v3</c>; <see cref="Version"/> is null when unpinned.</summary>
public sealed record VersionedRef(string Name, string? Version)
{
    public override string ToString() => Version is null ? Name : $"{Name}@{Version}";

    public static VersionedRef Parse(string text)
    {
        var at = text.LastIndexOf('@');
        if (at <= 0)
        {
            return new VersionedRef(text, null);
        }

        return new VersionedRef(text[..at], at == text.Length - 1 ? null : text[(at + 1)..]);
    }
}

/// <summary>An MCP grant: a server, and the tools on it this agent may call (all when empty; globs allowed).</summary>
public sealed record McpGrant(string Server, IReadOnlyList<string> Tools, SourceLocation Location)
{
    /// <summary>Tools refused even when <see cref="Tools"/> admits them (globs allowed).</summary>
    public IReadOnlyList<string> Deny { get; init; } = [];

    /// <summary><c>read</c> admits only read-only tools; <c>write</c> (the default) any granted tool.</summary>
    public McpAccess Access { get; init; } = McpAccess.Write;

    /// <summary>Narrowings checked at call time: a call of the rule's tool must have arguments matching its globs.</summary>
    public IReadOnlyList<McpArgRule> ArgRules { get; init; } = [];
}

/// <summary>How much of a server a grant admits.</summary>
public enum McpAccess { Write, Read }

/// <summary>A grant's tool narrowed by its arguments: <c>{ tool: write_file, args: { path: "docs/release-notes/*" } }</c>.</summary>
public sealed record McpArgRule(string Tool, IReadOnlyDictionary<string, string> Args, SourceLocation Location);

/// <summary>Run limits.</summary>
/// <param name="MaxSteps">Model and tool steps per run. Default 50.</param>
/// <param name="MaxTokensPerRun">Tokens per run across all steps. Default 1,000,000.</param>
/// <param name="TimeoutSeconds">Wall-clock limit per run. Default 3600.</param>
public sealed record HarnessConfig(int MaxSteps, long MaxTokensPerRun, int TimeoutSeconds)
{
    public static HarnessConfig Default { get; } = new(50, 1_000_000, 3600);

    /// <summary>USD per run across all its model calls; none by default (the fleet's budgets still apply).</summary>
    public decimal? MaxCostPerRun { get; init; }

    /// <summary>The same tool call with the same arguments this many times in a row ends the run as stuck. Default 3.</summary>
    public int StuckAfter { get; init; } = 3;

    /// <summary>A human's denial of a tool call ends the run as <c>denied</c> (<c>on_denied: end</c>) instead of being the tool's result for the model.</summary>
    public bool EndOnDenial { get; init; }
}

/// <summary>The heartbeat: a five-field cron expression, evaluated in UTC unless a time zone is given.</summary>
public sealed record TriggerConfig(string? Schedule, string? TimeZone)
{
    /// <summary>What a scheduled run is asked (its user message).</summary>
    public string? Input { get; init; }

    /// <summary>Runs of this loop that may be active at once; a beat while that many are active is skipped. Default 1.</summary>
    public int Concurrency { get; init; } = 1;

    /// <summary>What happens to beats missed while Flotilla was down: skipped, or one run for all of them.</summary>
    public MissedBeats Missed { get; init; } = MissedBeats.Skip;

    /// <summary>A per-agent URL (<c>POST /hooks/agents/NAME</c>) starts runs, signed with <see cref="WebhookSecret"/>.</summary>
    public bool Webhook { get; init; }

    /// <summary>The HMAC-SHA256 key webhook calls are signed with (<c>${env:NAME}</c>).</summary>
    public SecretReference? WebhookSecret { get; init; }
}

/// <summary>Beats missed while Flotilla was down.</summary>
public enum MissedBeats { Skip, RunOnce }
