using System.Collections.Concurrent;
using Flotilla.Fleet;
using Flotilla.Mcp.Calls;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Client;

namespace Flotilla.Mcp.Credentials;

/// <summary>
/// Sessions to <c>auth: per_user</c> servers, one per (server, user), each presenting that user's own token from the
/// vault, opened on first use and reused. A call without <c>X-Flotilla-User</c>, or for a user without a token, is
/// refused with what to do; no other credential stands in.
/// </summary>
internal sealed class PerUserSessions(TokenVault vault, ILoggerFactory loggers) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Server, string User), Lazy<Task<(string Token, McpClient Client)>>> _sessions = new();

    public async Task<McpClient> GetAsync(McpServerConfig server, string? user, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(user))
        {
            throw McpErrors.Error(McpErrors.Forbidden, $"mcp server '{server.Name}' acts for a user (auth: per_user): send X-Flotilla-User: NAME with the call");
        }

        string? token;
        try
        {
            token = await vault.GetAsync(server.Name, user, cancellationToken);
        }
        catch (TokenVaultException e)
        {
            throw McpErrors.Error(McpErrors.Forbidden, $"mcp server '{server.Name}': {e.Message}");
        }

        if (token is null)
        {
            throw McpErrors.Error(McpErrors.Forbidden, $"user '{user}' has no token for mcp server '{server.Name}'; an operator stores one with PUT /api/mcp/tokens/{server.Name}/{user}");
        }

        var key = (server.Name, user);
        while (true)
        {
            var session = _sessions.GetOrAdd(key, _ => new Lazy<Task<(string, McpClient)>>(() => ConnectAsync(server, token)));
            try
            {
                var (sessionToken, client) = await session.Value;
                if (sessionToken == token && !client.Completion.IsCompleted)
                {
                    return client;
                }
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                _sessions.TryRemove(new KeyValuePair<(string, string), Lazy<Task<(string, McpClient)>>>(key, session));
                throw;
            }

            // The token was replaced or the session ended: open a new one.
            if (_sessions.TryRemove(new KeyValuePair<(string, string), Lazy<Task<(string, McpClient)>>>(key, session)))
            {
                _ = DisposeAsync(session);
            }
        }
    }

    private async Task<(string Token, McpClient Client)> ConnectAsync(McpServerConfig server, string token)
    {
        using var timeout = new CancellationTokenSource(server.Timeout);
        var headers = new Dictionary<string, string> { ["Authorization"] = "Bearer " + token };
        var client = await McpClient.CreateAsync(Upstreams.McpUpstream.HttpTransport(server, headers, loggers), new McpClientOptions { InitializationTimeout = server.Timeout }, loggers, timeout.Token);
        return (token, client);
    }

    private static async Task DisposeAsync(Lazy<Task<(string Token, McpClient Client)>> session)
    {
        try
        {
            await (await session.Value).Client.DisposeAsync();
        }
        catch (Exception)
        {
            // A session that failed to open has nothing to close.
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var session in _sessions.Values)
        {
            await DisposeAsync(session);
        }

        _sessions.Clear();
    }
}
