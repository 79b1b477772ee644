using System.Security.Claims;
using System.Text.Json;
using Flotilla.Mcp.Calls;
using Flotilla.Mcp.Endpoint;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp;

/// <summary>A tool as a model is offered it: its exposed name (<c>SERVER__TOOL</c>), description and JSON schema.</summary>
public sealed record GovernedTool(string Name, string? Description, JsonElement InputSchema);

/// <summary>What an in-process tool call came to.</summary>
/// <param name="Text">The result's text content (what the model reads), or the refusal's message.</param>
/// <param name="IsError">The tool reported an error, or the gateway refused the call.</param>
/// <param name="ErrorCode">The MCP error code of a refusal (-32003 forbidden, -32004 unavailable, -32010 outcome unknown, …); null when the tool answered.</param>
/// <param name="ApprovalId">Set when the call awaits a human's approval (it has not run).</param>
public sealed record GovernedToolResult(string Text, bool IsError, int? ErrorCode, string? ApprovalId)
{
    /// <summary>The id of the call's trace record (its guardrail verdicts, approval and idempotency outcome).</summary>
    public string? TraceId { get; init; }

    public bool AwaitsApproval => ApprovalId is not null && ErrorCode is null && IsError;
}

/// <summary>
/// The MCP gateway's governed path for callers inside the process (the harness): the same catalogue, grants, guardrails,
/// approval gate, idempotency and traces as <c>tools/call</c> on <c>/mcp</c>, as a registered agent, without a loopback hop.
/// </summary>
public sealed class GovernedToolCalls
{
    private readonly McpCatalogHandlers _catalog;
    private readonly ToolCallPipeline _pipeline;

    internal GovernedToolCalls(McpCatalogHandlers catalog, ToolCallPipeline pipeline)
    {
        _catalog = catalog;
        _pipeline = pipeline;
    }

    /// <summary>The tools <paramref name="agent"/> may call now (listed ⇔ callable, as on <c>/mcp</c>).</summary>
    public IReadOnlyList<GovernedTool> ToolsFor(string agent) =>
        [.. _catalog.ListTools(Principal(agent)).Tools.Select(t => new GovernedTool(t.Name, t.Description, t.InputSchema))];

    /// <summary>
    /// Calls <paramref name="tool"/> as <paramref name="agent"/>. <paramref name="idempotencyKey"/> makes a retried side effect
    /// happen once; <paramref name="approvalId"/> presents a decided approval.
    /// </summary>
    public async Task<GovernedToolResult> CallAsync(string agent, string tool, string argumentsJson, string? runId, string? toolCallId,
        string? idempotencyKey, string? approvalId, CancellationToken cancellationToken)
    {
        Dictionary<string, JsonElement>? arguments;
        try
        {
            arguments = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(string.IsNullOrWhiteSpace(argumentsJson) ? "{}" : argumentsJson);
        }
        catch (JsonException e)
        {
            return new GovernedToolResult($"The arguments for '{tool}' are not a JSON object: {e.Message}", true, (int)McpErrorCode.InvalidParams, null);
        }

        var meta = new System.Text.Json.Nodes.JsonObject();
        if (runId is not null)
        {
            meta["flotilla/run_id"] = runId;
        }

        if (toolCallId is not null)
        {
            meta["flotilla/tool_call_id"] = toolCallId;
        }

        if (idempotencyKey is not null)
        {
            meta["flotilla/idempotency_key"] = idempotencyKey;
        }

        if (approvalId is not null)
        {
            meta["flotilla/approval_id"] = approvalId;
        }

        var request = new CallToolRequestParams { Name = tool, Arguments = arguments, Meta = meta };
        string? traceId = null;
        try
        {
            var result = await _pipeline.CallAsync(Principal(agent), request, cancellationToken, id => traceId = id);
            var text = string.Join("\n", result.Content.OfType<TextContentBlock>().Select(c => c.Text));
            if (text.Length == 0 && result.StructuredContent is { } structured)
            {
                text = structured.GetRawText();
            }

            var approval = result.Meta?["flotilla/approval"]?["id"]?.GetValue<string>();
            return new GovernedToolResult(text, result.IsError == true, null, result.IsError == true ? approval : null) { TraceId = traceId };
        }
        catch (McpProtocolException e)
        {
            return new GovernedToolResult(e.Message, true, (int)e.ErrorCode, null) { TraceId = traceId };
        }
    }

    private static ClaimsPrincipal Principal(string agent) =>
        new(new ClaimsIdentity([new Claim(McpInbound.AgentClaim, agent), new Claim(McpInbound.KeyClaim, "in-process")], "flotilla-in-process", McpInbound.AgentClaim, null));
}
