using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Flotilla.Mcp.Calls;
using Flotilla.Storage.Mcp;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;

namespace Flotilla.Mcp.Idempotency;

/// <summary>
/// Side-effecting tool calls happen once per idempotency key. The key is the caller's (<c>_meta["flotilla/idempotency_key"]</c>
/// or an <c>Idempotency-Key</c> header), else derived from the run and the model's tool-call id, else from the server, tool
/// and arguments; it is scoped to the agent and kept for <c>gateway.mcp.idempotency_ttl</c>. The same key and arguments
/// again get the first result without calling the server; concurrent duplicates in this process wait for the one call;
/// the same key with other arguments is a conflict. The call is recorded in flight before it is sent, so if Flotilla dies
/// before recording the outcome, the key is <c>unknown</c> at the next start and a retry is refused for a human to check.
/// </summary>
internal sealed class IdempotentCalls(IIdempotencyStore store, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, (string Sha, Task<CallToolResult> Result)> _running = new(StringComparer.Ordinal);

    /// <summary>
    /// The key a call is recorded under. Keys are scoped to the agent (the store's other half of the key) and to the
    /// human the call acts for: one user's result is never replayed to another.
    /// </summary>
    public static string KeyFor(ToolCall call, string? callerKey)
    {
        var user = call.User is null ? "" : $"user:{call.User}\n";
        if (callerKey is not null)
        {
            return user + "caller:" + callerKey;
        }

        var basis = call.Run is not null && call.ToolCallId is not null
            ? $"run\n{call.Run}\n{call.ToolCallId}\n{call.ArgumentsSha256}"
            : $"call\n{call.Server}\n{call.Tool}\n{call.ArgumentsSha256}";
        return user + "derived:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(basis)));
    }

    /// <summary>Runs <paramref name="execute"/> at most once for the key; see the class summary.</summary>
    public async Task<CallToolResult> RunAsync(ToolCall call, string key, Func<Task<CallToolResult>> execute, CancellationToken cancellationToken)
    {
        var scope = call.Caller!.Agent.Name + "\n" + key;
        var mine = new TaskCompletionSource<CallToolResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = mine.Task.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        var running = _running.GetOrAdd(scope, (call.ArgumentsSha256, mine.Task));
        if (!ReferenceEquals(running.Result, mine.Task))
        {
            if (running.Sha != call.ArgumentsSha256)
            {
                throw Conflict(call);
            }

            call.Idempotency = "joined";
            return await running.Result.WaitAsync(cancellationToken);
        }

        try
        {
            var result = await OnceAsync(call, key, execute, cancellationToken);
            mine.SetResult(result);
            return result;
        }
        catch (Exception e)
        {
            mine.SetException(e);
            throw;
        }
        finally
        {
            _running.TryRemove(scope, out _);
        }
    }

    private async Task<CallToolResult> OnceAsync(ToolCall call, string key, Func<Task<CallToolResult>> execute, CancellationToken cancellationToken)
    {
        var agent = call.Caller!.Agent.Name;
        if (await store.GetAsync(agent, key, time.GetUtcNow(), cancellationToken) is { } existing)
        {
            if (existing.Server != call.Server || existing.Tool != call.Tool || existing.ArgumentsSha256 != call.ArgumentsSha256)
            {
                throw Conflict(call);
            }

            switch (existing.State)
            {
                case IdempotencyState.Done:
                    call.Idempotency = "replayed";
                    return JsonSerializer.Deserialize<CallToolResult>(existing.Result!, McpJsonUtilities.DefaultOptions)!;
                case IdempotencyState.Unknown:
                    call.Idempotency = "unknown";
                    throw McpErrors.Error(McpErrors.OutcomeUnknown,
                        $"a call of '{call.Tool}' on '{call.Server}' with this idempotency key was sent at {existing.CreatedAt:u} and its outcome was never recorded " +
                        "(Flotilla stopped, or the server did not answer in time): it may have happened. Outcome unknown, needs a human: check the target, then retry with a new key");
                default:
                    call.Idempotency = "in_flight";
                    throw McpErrors.Error(McpErrors.Conflict, $"a call of '{call.Tool}' on '{call.Server}' with this idempotency key is in flight since {existing.CreatedAt:u}; retry when it has finished");
            }
        }

        return await execute();
    }

    /// <summary>Records the call in flight, durably, just before it is sent; false if another process holds the key.</summary>
    public Task<bool> BeginAsync(ToolCall call, string key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return store.BeginAsync(new IdempotencyRecord
        {
            Agent = call.Caller!.Agent.Name,
            Key = key,
            Server = call.Server!,
            Tool = call.Tool!,
            ArgumentsSha256 = call.ArgumentsSha256,
            State = IdempotencyState.InFlight,
            CreatedAt = now,
            ExpiresAt = now + call.Snapshot.Config.Gateway.Mcp.IdempotencyTtl,
        }, cancellationToken);
    }

    public Task CompleteAsync(ToolCall call, string key, CallToolResult result) =>
        store.CompleteAsync(call.Caller!.Agent.Name, key, JsonSerializer.Serialize(result, McpJsonUtilities.DefaultOptions), CancellationToken.None);

    public Task MarkUnknownAsync(ToolCall call, string key) => store.MarkUnknownAsync(call.Caller!.Agent.Name, key, CancellationToken.None);

    public Task ForgetAsync(ToolCall call, string key) => store.ForgetAsync(call.Caller!.Agent.Name, key, CancellationToken.None);

    private static McpProtocolException Conflict(ToolCall call)
    {
        call.Idempotency = "conflict";
        return McpErrors.Error(McpErrors.Conflict, $"this idempotency key was used for a call of '{call.Tool}' on '{call.Server}' with other arguments (or another tool); use a new key for a new call");
    }
}
