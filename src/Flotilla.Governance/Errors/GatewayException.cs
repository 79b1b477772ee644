namespace Flotilla.Governance.Errors;

/// <summary>
/// An error a caller can meet, with a stable code. Rendered as OpenAI error JSON:
/// <c>{"error":{"message","type","param","code"}}</c>. Messages say what to do next and never echo secrets.
/// </summary>
public sealed class GatewayException(int status, string type, string code, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    /// <summary>OpenAI error type: invalid_request_error, authentication_error, permission_error, rate_limit_error, api_error.</summary>
    public string Type { get; } = type;

    /// <summary>Stable machine-readable code (see <see cref="ErrorCodes"/>).</summary>
    public string Code { get; } = code;

    public string? Param { get; } = param;

    /// <summary>Seconds the caller should wait, sent as <c>Retry-After</c>.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static GatewayException BadRequest(string code, string message, string? param = null) =>
        new(400, "invalid_request_error", code, message, param);
}

/// <summary>The stable error codes of the gateway.</summary>
public static class ErrorCodes
{
    public const string InvalidJson = "invalid_json";
    public const string InvalidRequest = "invalid_request";
    public const string ModelNotFound = "model_not_found";
    public const string MissingKey = "missing_api_key";
    public const string InvalidKey = "invalid_api_key";
    public const string AgentKeyOnAdmin = "agent_key_not_allowed";
    public const string BodyTooLarge = "request_too_large";
    public const string UnsupportedMediaType = "unsupported_media_type";
    public const string AllTargetsFailed = "all_targets_failed";
    public const string UpstreamError = "upstream_error";
    public const string InvalidUpstreamAnswer = "invalid_upstream_answer";
    public const string UpstreamTimeout = "upstream_timeout";
    public const string StreamBroken = "stream_interrupted";
    public const string Unsupported = "unsupported";
    public const string InvalidMetadata = "invalid_metadata";
    public const string NotFound = "not_found";
    public const string RateLimited = "rate_limit_exceeded";
    public const string BudgetExceeded = "budget_exceeded";
    public const string GuardrailBlocked = "guardrail_blocked";
}
