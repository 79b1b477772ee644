namespace Flotilla.Fleet;

public enum CacheType { Exact, Semantic }

public enum CacheNamespace { Agent, Team, None }

/// <summary>Response caching, fleet-wide.</summary>
/// <param name="SimilarityThreshold">semantic: cosine similarity at or above which a cached answer is served. Default 0.9.</param>
/// <param name="Ttl">How long an entry lives. Default 1 hour.</param>
/// <param name="EmbeddingModel">semantic: the model that embeds the conversation.</param>
/// <param name="MaxEntries">Bound on entries per cache; least recently used are evicted. Default 10000.</param>
/// <param name="CacheToolCalls">Whether answers that carry tool calls may be cached. Default false.</param>
public sealed record CachingConfig(
    CacheType Type,
    double SimilarityThreshold,
    CacheNamespace NamespacePer,
    TimeSpan Ttl,
    string? EmbeddingModel,
    int MaxEntries,
    bool CacheToolCalls,
    SourceLocation Location);

public enum GuardrailAction { Block, Redact, Audit }

/// <summary>Guardrails per hook; every loop inherits them.</summary>
public sealed record GuardrailsConfig(
    IReadOnlyList<GuardrailRef> LlmInput,
    IReadOnlyList<GuardrailRef> LlmOutput,
    IReadOnlyList<GuardrailRef> McpPreTool,
    IReadOnlyList<GuardrailRef> McpPostTool)
{
    public static GuardrailsConfig None { get; } = new([], [], [], []);

    public static IReadOnlyList<string> BuiltInTypes { get; } = ["prompt-injection", "secrets-detection", "pii", "regex", "webhook"];
}

/// <summary>One guardrail on a hook: a built-in name, or a map with its options.</summary>
/// <param name="Type">prompt-injection, secrets-detection, pii, regex or webhook.</param>
/// <param name="Action">block (default), redact or audit.</param>
/// <param name="Threshold">prompt-injection: score at or above which text is flagged (0..1). Default 0.5.</param>
/// <param name="Patterns">regex: the patterns to deny or redact.</param>
/// <param name="Url">webhook: the external guardrail service.</param>
/// <param name="TimeoutMs">webhook: how long to wait. Default 1000.</param>
/// <param name="FailOpen">webhook: whether a timeout or error lets the call through. Default false (fail closed).</param>
public sealed record GuardrailRef(
    string Name,
    string Type,
    GuardrailAction Action,
    double? Threshold,
    IReadOnlyList<string> Patterns,
    Uri? Url,
    int TimeoutMs,
    bool FailOpen,
    SourceLocation Location);

public enum BudgetWindow { Minute, Hour, Day, Week, Month }

public enum PolicyMode { Enforce, Audit }

/// <summary>A spend limit in USD per UTC-aligned window, per agent, team, model or metadata key.</summary>
/// <param name="AppliesPer">agent, team, model or metadata.KEY.</param>
/// <param name="AlertAt">Percentages at which an alert fires once per window.</param>
public sealed record BudgetRule(
    string AppliesPer,
    decimal LimitUsd,
    BudgetWindow Window,
    IReadOnlyList<int> AlertAt,
    PolicyMode Mode,
    SourceLocation Location)
{
    private readonly string? _name;

    /// <summary>
    /// The rule's identity across fleet changes: spend is kept per name and key, so an apply that changes the limit keeps
    /// the spend, and a renamed rule starts afresh. Default <c>APPLIES_PER-WINDOW</c> (e.g. <c>agent-day</c>).
    /// </summary>
    public string Name
    {
        get => _name ?? $"{AppliesPer}-{Window.ToString().ToLowerInvariant()}";
        init => _name = value;
    }
}

/// <summary>Requests and tokens per minute, hour or day per agent, team, model or metadata key.</summary>
public sealed record RateLimitRule(
    string AppliesPer,
    long? RequestsPerMinute,
    long? RequestsPerHour,
    long? RequestsPerDay,
    long? TokensPerMinute,
    long? TokensPerHour,
    long? TokensPerDay,
    SourceLocation Location)
{
    /// <summary>MCP tool calls per minute (counted by the MCP gateway only; model calls never count against it).</summary>
    public long? ToolCallsPerMinute { get; init; }
}

/// <summary>Where alerts go besides the alert list.</summary>
public sealed record AlertsConfig(Uri? Webhook);
