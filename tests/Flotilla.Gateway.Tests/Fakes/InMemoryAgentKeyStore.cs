using Flotilla.Storage.Keys;

namespace Flotilla.Gateway.Tests.Fakes;

/// <summary>An agent key store in a list, so tests can see exactly what would have been persisted.</summary>
internal sealed class InMemoryAgentKeyStore : IAgentKeyStore
{
    private readonly List<AgentKeyRecord> _records = [];
    private readonly Lock _lock = new();

    public IReadOnlyList<AgentKeyRecord> Records
    {
        get
        {
            lock (_lock)
            {
                return [.. _records];
            }
        }
    }

    public Task AddAsync(AgentKeyRecord key, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _records.Add(key);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AgentKeyRecord>> ListAsync(CancellationToken cancellationToken) => Task.FromResult(Records);

    public Task<bool> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            var index = _records.FindIndex(r => r.Id == id && r.RevokedAt is null);
            if (index < 0)
            {
                return Task.FromResult(false);
            }

            _records[index] = _records[index] with { RevokedAt = at };
            return Task.FromResult(true);
        }
    }
}
