namespace Flotilla.Storage.Mcp;

/// <summary>One user's sealed token for one MCP server: never the token itself, only what the vault sealed.</summary>
/// <param name="Sealed">Nonce, ciphertext and tag, base64; only the vault's key opens it.</param>
/// <param name="KeyId">Which vault key sealed it (a digest of the key, never the key).</param>
public sealed record McpTokenRecord(string Server, string User, string Sealed, string KeyId, DateTimeOffset UpdatedAt);

/// <summary>The token vault's storage: sealed per-user tokens for <c>auth: per_user</c> servers.</summary>
public interface IMcpTokenStore
{
    Task PutAsync(McpTokenRecord record, CancellationToken cancellationToken);

    Task<McpTokenRecord?> GetAsync(string server, string user, CancellationToken cancellationToken);

    Task<bool> DeleteAsync(string server, string user, CancellationToken cancellationToken);

    /// <summary>Newest first; <paramref name="server"/> narrows.</summary>
    Task<IReadOnlyList<McpTokenRecord>> ListAsync(string? server, CancellationToken cancellationToken);
}
