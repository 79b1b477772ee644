namespace Flotilla.Storage.Keys;

/// <summary>An issued agent key. Only the SHA-256 hash of the key is stored.</summary>
public sealed record AgentKeyRecord(string Id, string Agent, string Hash, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt);

/// <summary>Agent keys (hashed) and other small durable settings such as the admin token's hash.</summary>
public interface IAgentKeyStore
{
    Task AddAsync(AgentKeyRecord key, CancellationToken cancellationToken);

    Task<IReadOnlyList<AgentKeyRecord>> ListAsync(CancellationToken cancellationToken);

    Task<bool> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken);
}
