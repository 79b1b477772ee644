using System.Security.Claims;
using System.Security.Cryptography;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Guardrails;
using Flotilla.Mcp.Approvals;
using Flotilla.Mcp.Endpoint;
using Flotilla.Mcp.Idempotency;
using Flotilla.Mcp.Grants;
using Flotilla.Mcp.Naming;
using Flotilla.Mcp.Upstreams;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Calls;

/// <summary>
/// The governed path of a <c>tools/call</c>: who is calling, the one grant decision (the same as <c>tools/list</c>), argument
/// rules, artifact ownership, <c>mcp_pre_tool</c> guardrails on the arguments, the upstream call within the server's timeout,
/// <c>mcp_post_tool</c> guardrails on the result, and one trace. A refused call never reaches the upstream.
/// </summary>
internal sealed partial class ToolCallPipeline(
    LiveFleet fleet,
    McpUpstreams upstreams,
    ApprovalGate approvals,
    IdempotentCalls idempotency,
    Credentials.PerUserSessions perUser,
    TraceWriter traces,
    IHttpContextAccessor http,
    TimeProvider time,
    ILogger<ToolCallPipeline> logger)
{
    /// <param name="recorded">Told the id of the call's trace record (the harness keeps it on the run's step).</param>
    public async ValueTask<CallToolResult> CallAsync(ClaimsPrincipal? user, CallToolRequestParams request, CancellationToken cancellationToken, Action<string>? recorded = null)
    {
        var headers = http.HttpContext?.Request.Headers;
        var (activity, traceId) = CallTracing.StartCall(headers, "tools/call");
        var recordId = headers?.ContainsKey("traceparent") == true ? $"{traceId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}" : traceId;
        recorded?.Invoke(recordId);
        var call = new ToolCall(fleet.Current, traceId, recordId, activity, time.GetUtcNow(), time.GetTimestamp(), request.Name ?? "");
        try
        {
            return await RunAsync(call, user, request, headers, cancellationToken);
        }
        catch (McpProtocolException e)
        {
            if (call.ErrorCode is null)
            {
                var (status, code) = (int)e.ErrorCode switch
                {
                    McpErrors.Forbidden => (403, "forbidden"),
                    McpErrors.Unavailable => (502, "upstream_unavailable"),
                    McpErrors.Conflict => (409, "idempotency_conflict"),
                    McpErrors.OutcomeUnknown => (409, "outcome_unknown"),
                    McpErrors.RateLimited => (429, "rate_limited"),
                    _ => (400, "invalid_request"),
                };
                call.Fail(status, code, e.Message);
            }

            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            call.Fail(499, "cancelled", "the caller cancelled the call");
            throw;
        }
        catch (Exception e)
        {
            LogFailed(logger, call.Exposed, e);
            call.Fail(500, "internal_error", "the gateway failed to relay the call; see its log");
            throw McpErrors.Error((int)McpErrorCode.InternalError, $"the gateway failed to relay '{call.Exposed}'; see its log for {call.RecordId}");
        }
        finally
        {
            await FinishAsync(call);
        }
    }

    private async ValueTask<CallToolResult> RunAsync(ToolCall call, ClaimsPrincipal? user, CallToolRequestParams request, IHeaderDictionary? headers, CancellationToken cancellationToken)
    {
        var snapshot = call.Snapshot;
        var agent = McpInbound.AgentOf(user) is { } name && snapshot.Agents.TryGetValue(name, out var found)
            ? found
            : throw Refuse(call, 401, "unauthorized", "the caller's agent is not in the fleet; present an agent key of a declared agent");
        call.Caller = new CallerIdentity(agent, McpInbound.KeyIdOf(user) ?? "");
        call.User = headers?["X-Flotilla-User"].ToString() is { Length: > 0 } u ? DisplayText.Safe(u, 128) : null;
        call.Run = MetaString(request.Meta, "flotilla/run_id");
        call.ToolCallId = MetaString(request.Meta, "flotilla/tool_call_id");

        var catalog = upstreams.Catalog;
        if (!catalog.ByName.TryGetValue(call.Exposed, out var entry))
        {
            if (ToolNames.ServerOf(call.Exposed) is { } serverName && upstreams.TryGet(serverName, out var down) && down.State != UpstreamState.Ready)
            {
                call.Server = serverName;
                throw Unavailable(call, $"mcp server '{serverName}' is unavailable: {down.Failure ?? "it is still connecting"}; its tools come back when it answers again");
            }

            throw Refuse(call, 404, "unknown_tool", $"unknown tool '{DisplayText.Safe(call.Exposed, 160)}'; tools/list shows the tools this agent may call", (int)McpErrorCode.InvalidParams);
        }

        call.Server = entry.Upstream.Name;
        call.Tool = entry.Tool.Name;
        var arguments = request.Arguments;
        var canonical = ToolArguments.Canonical(arguments);
        call.ArgumentsSha256 = ToolArguments.Sha256(canonical);
        if (snapshot.Config.Gateway.Mcp.RecordArguments)
        {
            call.Arguments = SecretScrubber.Scrub(DisplayText.Safe(canonical, 4096));
        }

        var server = entry.Upstream.ConfigIn(snapshot);
        var decision = ToolPolicy.Decide(agent, server, entry.Tool.Name, entry.Tool.Annotations, snapshot.Config.Gateway.DestructiveTools);
        if (!decision.Allowed)
        {
            throw Refuse(call, 403, "tool_not_granted", decision.Refusal!);
        }

        var readOnlyArguments = AsReadOnly(arguments);
        if (ToolPolicy.CheckArguments(agent, decision.Grant!, entry.Tool.Name, readOnlyArguments) is { } narrowed)
        {
            throw Refuse(call, 403, "arguments_not_granted", narrowed);
        }

        if (!decision.ReadOnly && Artifacts.Written(snapshot.Config, server.Name, entry.Tool.Name, readOnlyArguments) is { } artifact)
        {
            call.Artifact = artifact.Name;
            if (artifact.Owner is { } owner && owner != agent.Name)
            {
                throw Refuse(call, 403, "artifact_owned", $"'{entry.Tool.Name}' on '{server.Name}' writes artifact '{artifact.Name}', which agent '{owner}' owns; only its owner may write it");
            }
        }

        if (snapshot.RateLimits.TryAcquireToolCall(call.Subject) is { IsAllowed: false } limited)
        {
            call.Note(limited.Reason!);
            throw Refuse(call, 429, "rate_limited", limited.Reason!, McpErrors.RateLimited);
        }

        var guardrails = snapshot.Guardrails;
        if (!guardrails[GuardrailHook.McpPreTool].IsEmpty && arguments is { Count: > 0 })
        {
            var texts = ToolArguments.Strings(arguments);
            var outcome = await guardrails.RunAsync(GuardrailHook.McpPreTool, texts, call.GuardrailContext, cancellationToken);
            call.AddVerdicts("mcp_pre_tool", outcome.Verdicts);
            if (outcome.IsBlocked)
            {
                throw Refuse(call, 403, "guardrail_blocked", outcome.Reason!);
            }

            if (outcome.Decision == GuardrailDecision.Redacted)
            {
                arguments = ToolArguments.Replace(arguments, outcome.Texts);
            }
        }

        if (decision.ReadOnly)
        {
            var read = await SendAsync(call, entry, server, arguments, cancellationToken);
            return await GuardResultAsync(call, read, cancellationToken);
        }

        // A side effect: once per idempotency key, and after a human's approval when the tool is destructive.
        var callerKey = MetaString(request.Meta, "flotilla/idempotency_key") ?? (headers?["Idempotency-Key"].ToString() is { Length: > 0 } h ? h : null);
        var key = IdempotentCalls.KeyFor(call, callerKey is null ? null : DisplayText.Safe(callerKey, 256));
        var approvalId = MetaString(request.Meta, "flotilla/approval_id");
        return await idempotency.RunAsync(call, key, async () =>
        {
            if (decision.Destructive)
            {
                switch (await approvals.PassAsync(call, canonical, approvalId, cancellationToken))
                {
                    case GateOutcome.Waiting waiting:
                        call.ApprovalId = waiting.Approval.Id;
                        call.Fail(202, "approval_pending", $"awaits approval {waiting.Approval.Id}");
                        return AwaitingApproval(waiting.Approval);
                    case GateOutcome.Refused refused:
                        call.ApprovalId = refused.Approval.Id;
                        throw Refuse(call, 403, "approval_denied", refused.Message);
                    case GateOutcome.Proceed proceed:
                        call.ApprovalId = proceed.Approval.Id;
                        call.Note($"approved by {proceed.Approval.DecidedBy}");
                        break;
                }
            }

            if (!await idempotency.BeginAsync(call, key, cancellationToken))
            {
                throw McpErrors.Error(McpErrors.Conflict, $"a call of '{entry.Tool.Name}' on '{server.Name}' with this idempotency key is already in flight; retry when it has finished");
            }

            CallToolResult sent;
            try
            {
                sent = await SendAsync(call, entry, server, arguments, cancellationToken);
            }
            catch (Exception) when (call.Status == 504 || cancellationToken.IsCancellationRequested)
            {
                // Sent, and no answer: it may have happened.
                await idempotency.MarkUnknownAsync(call, key);
                call.Idempotency = "unknown";
                throw;
            }
            catch (Exception)
            {
                // Refused or unreachable: nothing happened, the key is free again.
                await idempotency.ForgetAsync(call, key);
                throw;
            }

            var guarded = await GuardResultAsync(call, sent, cancellationToken);
            await idempotency.CompleteAsync(call, key, guarded);
            call.Idempotency ??= "executed";
            return guarded;
        }, cancellationToken);
    }

    /// <summary>What a caller gets while a destructive call waits: an error result (so a model does not take it for done) naming the approval.</summary>
    private static CallToolResult AwaitingApproval(Flotilla.Storage.Mcp.ApprovalRecord approval) => new()
    {
        IsError = true,
        Content =
        [
            new TextContentBlock
            {
                Text = $"'{approval.Tool}' on '{approval.Server}' is destructive and has NOT run: it awaits a human's approval ({approval.Id}, " +
                    $"until {approval.ExpiresAt:u}). Once approved, call it again with the same arguments and it runs once.",
            },
        ],
        Meta = new System.Text.Json.Nodes.JsonObject
        {
            ["flotilla/approval"] = new System.Text.Json.Nodes.JsonObject
            {
                ["id"] = approval.Id,
                ["status"] = approval.Status,
                ["expires_at"] = approval.ExpiresAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            },
        },
    };

    private static string? MetaString(System.Text.Json.Nodes.JsonObject? meta, string name) =>
        meta?[name] is System.Text.Json.Nodes.JsonValue value && value.TryGetValue<string>(out var text) && text.Length > 0 ? text : null;

    private static IReadOnlyDictionary<string, JsonElement>? AsReadOnly(IDictionary<string, JsonElement>? arguments) =>
        arguments is null ? null : arguments as IReadOnlyDictionary<string, JsonElement> ?? new Dictionary<string, JsonElement>(arguments, StringComparer.Ordinal);

    private async Task<CallToolResult> SendAsync(ToolCall call, CatalogTool entry, McpServerConfig server, IDictionary<string, JsonElement>? arguments, CancellationToken cancellationToken)
    {
        McpUpstream upstream = entry.Upstream;
        ModelContextProtocol.Client.McpClient client;
        try
        {
            // A per-user server is called with the caller's own token, never another's.
            client = server.Auth.Type == McpAuthType.PerUser ? await perUser.GetAsync(server, call.User, cancellationToken) : upstream.Client;
        }
        catch (UpstreamUnavailableException e)
        {
            throw Unavailable(call, e.Message);
        }
        catch (Exception e) when (e is not McpProtocolException and not OperationCanceledException)
        {
            throw Unavailable(call, $"mcp server '{upstream.Name}' could not be reached as user '{call.User}': {DisplayText.Safe(e.Message, 300)}");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(server.Timeout);
        try
        {
            var forwarded = new CallToolRequestParams { Name = entry.Tool.Name, Arguments = arguments };
            return await client.CallToolAsync(forwarded, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Unavailable(call, $"mcp server '{upstream.Name}' did not answer '{entry.Tool.Name}' within {server.Timeout.TotalSeconds:0.###} s", 504);
        }
        catch (McpProtocolException e)
        {
            // The server answered with a JSON-RPC error: relay it, naming the server.
            call.Fail(502, "upstream_error", $"mcp server '{upstream.Name}': {e.Message}");
            throw new McpProtocolException($"mcp server '{upstream.Name}' refused '{entry.Tool.Name}': {RemoteMessage(e)}", e.ErrorCode);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            if (server.Auth.Type != McpAuthType.PerUser)
            {
                upstream.ReportBroken(e);
            }

            throw Unavailable(call, $"mcp server '{upstream.Name}' failed during '{entry.Tool.Name}': {DisplayText.Safe(e.Message, 300)}");
        }
    }

    /// <summary><c>mcp_post_tool</c>: a blocked result never reaches the caller; it gets an error result saying why instead.</summary>
    private static async ValueTask<CallToolResult> GuardResultAsync(ToolCall call, CallToolResult result, CancellationToken cancellationToken)
    {
        var guardrails = call.Snapshot.Guardrails;
        var pipeline = guardrails[GuardrailHook.McpPostTool];
        if (pipeline.IsEmpty)
        {
            return result;
        }

        var texts = new List<string>();
        foreach (var block in result.Content)
        {
            if (block is TextContentBlock text)
            {
                texts.Add(text.Text);
            }
        }

        if (result.StructuredContent is { } structured)
        {
            ToolArguments.Collect(structured, texts);
        }

        if (texts.Count == 0)
        {
            return result;
        }

        var outcome = await guardrails.RunAsync(GuardrailHook.McpPostTool, texts, call.GuardrailContext, cancellationToken);
        call.AddVerdicts("mcp_post_tool", outcome.Verdicts);
        if (outcome.IsBlocked)
        {
            call.Fail(200, "guardrail_blocked", outcome.Reason!);
            return new CallToolResult
            {
                IsError = true,
                Content = [new TextContentBlock { Text = $"The gateway withheld this tool's result: {outcome.Reason}" }],
            };
        }

        if (outcome.Decision != GuardrailDecision.Redacted)
        {
            return result;
        }

        var at = 0;
        var content = new List<ContentBlock>(result.Content.Count);
        foreach (var block in result.Content)
        {
            content.Add(block is TextContentBlock ? new TextContentBlock { Text = outcome.Texts[at++] } : block);
        }

        var structuredText = result.StructuredContent is { } s ? ToolArguments.Rewrite(s, outcome.Texts, ref at) : (JsonElement?)null;
        return new CallToolResult { Content = content, StructuredContent = structuredText, IsError = result.IsError, Meta = result.Meta };
    }

    /// <summary>An upstream's JSON-RPC error message without the client's "Request failed (remote): " prefix, bounded and made safe.</summary>
    internal static string RemoteMessage(McpProtocolException e)
    {
        const string Prefix = "Request failed (remote): ";
        var message = e.Message.StartsWith(Prefix, StringComparison.Ordinal) ? e.Message[Prefix.Length..] : e.Message;
        return DisplayText.Safe(message, 1000);
    }

    private static McpProtocolException Refuse(ToolCall call, int status, string code, string message, int jsonRpcCode = McpErrors.Forbidden)
    {
        call.Fail(status, code, message);
        return McpErrors.Error(jsonRpcCode, message);
    }

    private static McpProtocolException Unavailable(ToolCall call, string message, int status = 502)
    {
        call.Fail(status, status == 504 ? "upstream_timeout" : "upstream_unavailable", message);
        return McpErrors.Error(McpErrors.Unavailable, message);
    }

    private async ValueTask FinishAsync(ToolCall call)
    {
        if (call.Caller is not null)
        {
            await traces.EnqueueAsync(call.ToRecord(time.GetElapsedTime(call.Start).TotalMilliseconds));
        }

        if (call.Activity is { } activity)
        {
            activity.DisplayName = $"tools/call {call.Exposed}";
            activity.SetTag("gen_ai.tool.name", call.Exposed);
            activity.SetTag("flotilla.agent", call.Caller?.Agent.Name);
            activity.SetTag("http.response.status_code", call.Status);
            activity.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "tools/call {Tool} failed in the gateway")]
    private static partial void LogFailed(ILogger logger, string tool, Exception error);
}
