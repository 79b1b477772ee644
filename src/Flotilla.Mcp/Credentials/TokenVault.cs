using System.Security.Cryptography;
using System.Text;
using Flotilla.Storage.Mcp;

namespace Flotilla.Mcp.Credentials;

/// <summary>Why the vault could not do what was asked.</summary>
public sealed class TokenVaultException(string message) : Exception(message);

/// <summary>
/// Per-user tokens for MCP servers with <c>auth: per_user</c>, sealed at rest with AES-256-GCM under a key from the
/// environment (<c>FLOTILLA_VAULT_KEY</c>: 32 bytes, base64). Each token is bound to its server and user (they are the
/// associated data), so a sealed token moved to another slot does not open. The key never touches the disk; without it
/// the vault stores and opens nothing, and per-user servers are not called.
/// </summary>
public sealed class TokenVault
{
    public const string KeyVariable = "FLOTILLA_VAULT_KEY";
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly IMcpTokenStore _store;
    private readonly TimeProvider _time;
    private readonly byte[]? _key;
    private readonly string? _problem;

    public TokenVault(IMcpTokenStore store, TimeProvider time)
        : this(store, time, Environment.GetEnvironmentVariable(KeyVariable))
    {
    }

    internal TokenVault(IMcpTokenStore store, TimeProvider time, string? key)
    {
        _store = store;
        _time = time;
        if (string.IsNullOrWhiteSpace(key))
        {
            _problem = $"the token vault has no key: set {KeyVariable} to 32 random bytes in base64 (openssl rand -base64 32) and restart";
            return;
        }

        try
        {
            _key = Convert.FromBase64String(key.Trim());
        }
        catch (FormatException)
        {
            _key = null;
        }

        if (_key is not { Length: 32 })
        {
            _key = null;
            _problem = $"{KeyVariable} must be 32 bytes in base64 (openssl rand -base64 32)";
        }
        else
        {
            KeyId = Convert.ToHexStringLower(SHA256.HashData(_key).AsSpan(0, 8));
        }
    }

    /// <summary>A digest naming the key in force (never the key); null without one.</summary>
    public string? KeyId { get; }

    /// <summary>Raised after a token is stored, so a per-user server waiting for its first token connects at once.</summary>
    public event Action<string>? Stored;

    public async Task PutAsync(string server, string user, string token, CancellationToken cancellationToken)
    {
        var key = _key ?? throw new TokenVaultException(_problem!);
        var plain = Encoding.UTF8.GetBytes(token);
        var sealedBytes = new byte[NonceSize + plain.Length + TagSize];
        var nonce = sealedBytes.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using (var aes = new AesGcm(key, TagSize))
        {
            aes.Encrypt(nonce, plain, sealedBytes.AsSpan(NonceSize, plain.Length), sealedBytes.AsSpan(NonceSize + plain.Length), Bound(server, user));
        }

        CryptographicOperations.ZeroMemory(plain);
        await _store.PutAsync(new McpTokenRecord(server, user, Convert.ToBase64String(sealedBytes), KeyId!, _time.GetUtcNow()), cancellationToken);
        Stored?.Invoke(server);
    }

    /// <summary>The user's token for the server, or null when they have none.</summary>
    public async Task<string?> GetAsync(string server, string user, CancellationToken cancellationToken)
    {
        var key = _key ?? throw new TokenVaultException(_problem!);
        return await _store.GetAsync(server, user, cancellationToken) is { } record ? Open(key, record) : null;
    }

    /// <summary>Some user's token for the server (the most recently stored), to read its tool list; null when none.</summary>
    public async Task<(string User, string Token)?> AnyAsync(string server, CancellationToken cancellationToken)
    {
        var key = _key ?? throw new TokenVaultException(_problem!);
        foreach (var record in await _store.ListAsync(server, cancellationToken))
        {
            if (record.KeyId == KeyId)
            {
                return (record.User, Open(key, record));
            }
        }

        return null;
    }

    public Task<bool> DeleteAsync(string server, string user, CancellationToken cancellationToken) => _store.DeleteAsync(server, user, cancellationToken);

    public Task<IReadOnlyList<McpTokenRecord>> ListAsync(string? server, CancellationToken cancellationToken) => _store.ListAsync(server, cancellationToken);

    private static string Open(byte[] key, McpTokenRecord record)
    {
        var sealedBytes = Convert.FromBase64String(record.Sealed);
        var length = sealedBytes.Length - NonceSize - TagSize;
        var plain = new byte[Math.Max(length, 0)];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(sealedBytes.AsSpan(0, NonceSize), sealedBytes.AsSpan(NonceSize, length), sealedBytes.AsSpan(NonceSize + length), plain, Bound(record.Server, record.User));
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new TokenVaultException($"the token of user '{record.User}' for '{record.Server}' does not open with the vault key in force " +
                $"(sealed under key {record.KeyId}); store it again");
        }

        return Encoding.UTF8.GetString(plain);
    }

    private static byte[] Bound(string server, string user) => Encoding.UTF8.GetBytes($"flotilla-mcp-token\n{server}\n{user}");
}
