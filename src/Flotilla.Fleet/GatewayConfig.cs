namespace Flotilla.Fleet;

/// <summary>Fleet-level policy, declared once under <c>gateway:</c> and inherited by every loop.</summary>
public sealed record GatewayConfig(
    IReadOnlyList<ProviderConfig> Providers,
    IReadOnlyList<ModelConfig> Models,
    RoutingConfig Routing,
    CachingConfig? Caching,
    GuardrailsConfig Guardrails,
    IReadOnlyList<BudgetRule> Budgets,
    IReadOnlyList<RateLimitRule> RateLimits,
    AlertsConfig? Alerts,
    IReadOnlyList<string> DestructiveTools,
    LimitsConfig Limits,
    TracesConfig Traces,
    TelemetryConfig Telemetry)
{
    /// <summary>Artifacts loops may own, and how a write to each is recognised.</summary>
    public IReadOnlyList<ArtifactConfig> Artifacts { get; init; } = [];

    /// <summary>MCP gateway settings.</summary>
    public McpGatewayConfig Mcp { get; init; } = McpGatewayConfig.Default;

    /// <summary>Responses API settings (<c>gateway.responses</c>).</summary>
    public ResponsesConfig Responses { get; init; } = ResponsesConfig.Default;

    public static GatewayConfig Empty { get; } = new([], [], RoutingConfig.Default, null, GuardrailsConfig.None, [], [], null, [], LimitsConfig.Default,
        TracesConfig.Default, TelemetryConfig.Default);
}

/// <summary>How <c>POST /v1/responses</c> keeps the conversations it served (<c>gateway.responses</c>).</summary>
/// <param name="Ttl">How long a served response can be continued with <c>previous_response_id</c> (default 30 days, as OpenAI keeps them).</param>
public sealed record ResponsesConfig(TimeSpan Ttl)
{
    public static ResponsesConfig Default { get; } = new(TimeSpan.FromDays(30));
}

/// <summary>Metrics and trace export. Read at start; changing them takes a restart.</summary>
/// <param name="Metrics">Serve Prometheus metrics at <c>/metrics</c> (default true).</param>
/// <param name="OtlpEndpoint">Export spans over OTLP/HTTP (protobuf) to this base URL's <c>/v1/traces</c>; default none
/// (then <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, when set).</param>
public sealed record TelemetryConfig(bool Metrics, Uri? OtlpEndpoint)
{
    public static TelemetryConfig Default { get; } = new(true, null);
}

/// <summary>How long call records are kept.</summary>
/// <param name="Retention">Traces older than this are pruned hourly (default 30 days). Usage rollups are kept at least as long,
/// and never less than the longest budget window needs.</param>
public sealed record TracesConfig(TimeSpan Retention)
{
    public static TracesConfig Default { get; } = new(TimeSpan.FromDays(30));
}

/// <summary>Kinds of model provider.</summary>
public enum ProviderType
{
    /// <summary>Any OpenAI-compatible endpoint (<c>base_url</c>, default <c>https://api.openai.com/v1</c>).</summary>
    OpenAI,
    /// <summary>Anthropic's Messages API, translated to and from the OpenAI wire format.</summary>
    Anthropic,
    /// <summary>Built in, offline and deterministic: answers text, emits tool calls, embeds text.</summary>
    Simulated,
}

/// <summary>A model provider (an upstream).</summary>
/// <param name="Name">Unique name that models refer to.</param>
/// <param name="Type">openai, anthropic or simulated.</param>
/// <param name="BaseUrl">Upstream base URL; defaults per type.</param>
/// <param name="ApiKey">The credential, only as <c>${env:NAME}</c>.</param>
/// <param name="Headers">Extra headers sent upstream; values may be <c>${env:NAME}</c>.</param>
/// <param name="Simulation">Behaviour of a <c>simulated</c> provider (latency, forced failures).</param>
public sealed record ProviderConfig(
    string Name,
    ProviderType Type,
    Uri? BaseUrl,
    SecretReference? ApiKey,
    IReadOnlyDictionary<string, ConfigValue> Headers,
    SimulationConfig Simulation,
    SourceLocation Location);

/// <summary>A header or option value: either a literal or a secret reference.</summary>
public sealed record ConfigValue(string? Literal, SecretReference? Secret)
{
    public string? Resolve() => Secret is null ? Literal : Secret.Resolve();
}

/// <summary>How the built-in simulated provider behaves. Every field defaults to "healthy and instant".</summary>
/// <param name="LatencyMs">Delay before the answer (and before the first streamed chunk). Default 0.</param>
/// <param name="ChunkDelayMs">Delay between streamed chunks. Default 0.</param>
/// <param name="FailWithStatus">When set, every call fails with this HTTP status (to demonstrate fallback).</param>
public sealed record SimulationConfig(int LatencyMs, int ChunkDelayMs, int? FailWithStatus)
{
    public static SimulationConfig Default { get; } = new(0, 0, null);
}

/// <summary>A concrete model at a provider, with its price.</summary>
/// <param name="Name">The name callers and virtual models use.</param>
/// <param name="Provider">The provider that serves it.</param>
/// <param name="UpstreamModel">The model id sent to the provider; defaults to <paramref name="Name"/>.</param>
/// <param name="Price">USD per million input and output tokens; zero when absent.</param>
/// <param name="DeprecatedAfter">The last day the provider serves the model, if announced.</param>
/// <param name="Kind">chat (default) or embedding.</param>
public sealed record ModelConfig(
    string Name,
    string Provider,
    string UpstreamModel,
    ModelPrice Price,
    DateOnly? DeprecatedAfter,
    ModelKind Kind,
    SourceLocation Location)
{
    /// <summary>
    /// A simulated model's scripted behaviour (<c>script:</c>): the answer to a conversation is the step whose index is the
    /// number of assistant turns it already holds, so a loop driven by it is deterministic and offline. Empty: the
    /// simulated provider's default behaviour.
    /// </summary>
    public IReadOnlyList<ScriptStep> Script { get; init; } = [];
}

/// <summary>
/// One scripted answer: tool calls (<see cref="Calls"/>: one for <c>tool</c>, several for <c>calls</c>, made in one answer),
/// <see cref="Text"/>, or whatever the last tool returned (<see cref="LastToolResult"/>).
/// </summary>
public sealed record ScriptStep(IReadOnlyList<ScriptCall> Calls, string? Text, bool LastToolResult);

/// <summary>One tool call of a scripted step.</summary>
public sealed record ScriptCall(string Tool, string ArgumentsJson);

public enum ModelKind { Chat, Embedding }

/// <summary>Price in USD per million tokens.</summary>
public sealed record ModelPrice(decimal InputPerMillion, decimal OutputPerMillion)
{
    public static ModelPrice Free { get; } = new(0, 0);

    public decimal Cost(long inputTokens, long outputTokens) =>
        (inputTokens * InputPerMillion + outputTokens * OutputPerMillion) / 1_000_000m;
}

/// <summary>Routing: virtual models, retries, cooldown and the per-request timeout.</summary>
/// <param name="DefaultVirtualModel">Used when a request names no model and its agent declares none.</param>
/// <param name="RequestTimeoutMs">Whole-request deadline across all attempts. Default 300000 (5 min).</param>
public sealed record RoutingConfig(
    string? DefaultVirtualModel,
    IReadOnlyList<VirtualModelConfig> VirtualModels,
    RetryConfig Retries,
    CooldownConfig Cooldown,
    int RequestTimeoutMs,
    SourceLocation? DefaultLocation)
{
    public static RoutingConfig Default { get; } = new(null, [], RetryConfig.Default, CooldownConfig.Default, 300_000, null);
}

public enum RoutingStrategy { Priority, Weight, Latency }

/// <summary>A name callers use that routes to one of several concrete models.</summary>
/// <param name="FallbackOn">Statuses that move on to the next target. Default 429, 500, 502, 503, 504.
/// Connection failures, timeouts and invalid upstream bodies always fall back.</param>
/// <param name="TtftTimeoutMs">Cut-off for the first byte of the answer (headers and, when streaming, the first
/// event); past it the attempt is abandoned before anything reaches the caller. Null: no cut-off.</param>
/// <param name="LatencyFactor">latency strategy: targets within this factor of the fastest time per token share the
/// traffic. Default 1.5.</param>
public sealed record VirtualModelConfig(
    string Name,
    RoutingStrategy Strategy,
    IReadOnlyList<RouteTarget> Targets,
    IReadOnlyList<int> FallbackOn,
    int? TtftTimeoutMs,
    double LatencyFactor,
    SourceLocation Location)
{
    public static IReadOnlyList<int> DefaultFallbackOn { get; } = [429, 500, 502, 503, 504];
}

/// <param name="Priority">Lower is tried first (priority strategy). Default 0.</param>
/// <param name="Weight">Share of traffic (weight strategy). Default 1.</param>
public sealed record RouteTarget(string Model, int Priority, double Weight, SourceLocation Location);

/// <summary>Bounded retries of the same target with exponential backoff and full jitter.</summary>
/// <param name="Attempts">Retries after the first try of a target. Default 2.</param>
/// <param name="OnStatusCodes">Statuses that are retried. Default 429, 500, 502, 503.</param>
/// <param name="BaseDelayMs">First backoff. Default 250 ms; doubles each retry.</param>
/// <param name="MaxDelayMs">Longest wait before a retry, Retry-After included; a longer Retry-After moves on to the
/// next target at once. Default 5000 ms.</param>
public sealed record RetryConfig(int Attempts, IReadOnlyList<int> OnStatusCodes, int BaseDelayMs, int MaxDelayMs)
{
    public static RetryConfig Default { get; } = new(2, [429, 500, 502, 503], 250, 5_000);
}

/// <summary>A target that fails <see cref="Failures"/> times in a row is skipped for <see cref="Seconds"/>, then tried again.</summary>
public sealed record CooldownConfig(int Failures, int Seconds)
{
    public static CooldownConfig Default { get; } = new(3, 30);
}

/// <summary>Request limits applied before anything else.</summary>
/// <param name="MaxRequestBodyBytes">Largest accepted request body. Default 4 MiB.</param>
public sealed record LimitsConfig(long MaxRequestBodyBytes)
{
    public static LimitsConfig Default { get; } = new(4 * 1024 * 1024);
}
