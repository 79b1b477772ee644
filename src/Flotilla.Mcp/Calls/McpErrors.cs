using ModelContextProtocol;

namespace Flotilla.Mcp.Calls;

/// <summary>
/// JSON-RPC error codes the MCP gateway answers with besides the protocol's own (<c>-32602</c> for an unknown tool or bad
/// arguments). All are in JSON-RPC's range for server errors; docs/mcp.md lists them.
/// </summary>
public static class McpErrors
{
    /// <summary>The agent's grants, an argument rule, artifact ownership or an <c>mcp_pre_tool</c> guardrail refused the call.</summary>
    public const int Forbidden = -32003;

    /// <summary>The tool's server is down, still connecting, or did not answer in time.</summary>
    public const int Unavailable = -32004;

    /// <summary>A rate limit refused the call.</summary>
    public const int RateLimited = -32029;

    /// <summary>The idempotency key was used before with other arguments.</summary>
    public const int Conflict = -32009;

    /// <summary>A call with this idempotency key was sent and its outcome never recorded: a human must check.</summary>
    public const int OutcomeUnknown = -32010;

    public static McpProtocolException Error(int code, string message) => new(message, (McpErrorCode)code);
}
