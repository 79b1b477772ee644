using Flotilla.Storage.Keys;

namespace Flotilla.Storage.Sqlite;

public sealed class SqliteAgentKeyStore(SqliteDatabase database) : IAgentKeyStore
{
    public Task AddAsync(AgentKeyRecord key, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO agent_keys (id, agent, hash, prefix, created_at) VALUES ($id, $agent, $hash, $prefix, $created)";
        command.Parameters.AddWithValue("$id", key.Id);
        command.Parameters.AddWithValue("$agent", key.Agent);
        command.Parameters.AddWithValue("$hash", key.Hash);
        command.Parameters.AddWithValue("$prefix", key.Prefix);
        command.Parameters.AddWithValue("$created", key.CreatedAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AgentKeyRecord>> ListAsync(CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, agent, hash, prefix, created_at, revoked_at FROM agent_keys ORDER BY created_at";
        using var reader = command.ExecuteReader();
        var result = new List<AgentKeyRecord>();
        while (reader.Read())
        {
            result.Add(new AgentKeyRecord(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)),
                reader.IsDBNull(5) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
        }

        return Task.FromResult<IReadOnlyList<AgentKeyRecord>>(result);
    }

    public Task<bool> RevokeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE agent_keys SET revoked_at = $at WHERE id = $id AND revoked_at IS NULL";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }
}
