using Flotilla.Storage.Mcp;
using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>Approvals in SQLite: every write is committed (synchronous = NORMAL in WAL) before the caller hears of it.</summary>
public sealed class SqliteApprovalStore(SqliteDatabase database) : IApprovalStore
{
    private const string Columns = "id, agent, run, user_name, server, tool, arguments, arguments_sha256, requested_at, expires_at, status, decided_by, decided_at, reason, consumed_at";

    public Task AddAsync(ApprovalRecord a, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"INSERT INTO approvals ({Columns}) VALUES ($id, $agent, $run, $user, $server, $tool, $arguments, $sha, $requested, $expires, $status, NULL, NULL, NULL, NULL)";
        command.Parameters.AddWithValue("$id", a.Id);
        command.Parameters.AddWithValue("$agent", a.Agent);
        command.Parameters.AddWithValue("$run", (object?)a.Run ?? DBNull.Value);
        command.Parameters.AddWithValue("$user", (object?)a.User ?? DBNull.Value);
        command.Parameters.AddWithValue("$server", a.Server);
        command.Parameters.AddWithValue("$tool", a.Tool);
        command.Parameters.AddWithValue("$arguments", a.Arguments);
        command.Parameters.AddWithValue("$sha", a.ArgumentsSha256);
        command.Parameters.AddWithValue("$requested", a.RequestedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", a.ExpiresAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$status", a.Status);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<ApprovalRecord?> GetAsync(string id, CancellationToken cancellationToken) =>
        Task.FromResult(Query("WHERE id = $id", c => c.Parameters.AddWithValue("$id", id), 1).FirstOrDefault());

    public Task<ApprovalRecord?> LatestForAsync(string agent, string? user, string server, string tool, string argumentsSha256, CancellationToken cancellationToken) =>
        Task.FromResult(Query("WHERE agent = $agent AND user_name IS $user AND server = $server AND tool = $tool AND arguments_sha256 = $sha ORDER BY requested_at DESC, rowid DESC", c =>
        {
            c.Parameters.AddWithValue("$agent", agent);
            c.Parameters.AddWithValue("$user", (object?)user ?? DBNull.Value);
            c.Parameters.AddWithValue("$server", server);
            c.Parameters.AddWithValue("$tool", tool);
            c.Parameters.AddWithValue("$sha", argumentsSha256);
        }, 1).FirstOrDefault());

    public Task<IReadOnlyList<ApprovalRecord>> ListAsync(string? status, int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<ApprovalRecord>>(Query(
            (status is null ? "" : "WHERE status = $status ") + "ORDER BY requested_at DESC, rowid DESC",
            c => c.Parameters.AddWithValue("$status", (object?)status ?? DBNull.Value), Math.Clamp(limit, 1, 1000)));

    public Task<bool> DecideAsync(string id, string status, string decidedBy, string? reason, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE approvals SET status = $status, decided_by = $by, decided_at = $at, reason = $reason WHERE id = $id AND status = 'pending'";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$status", status);
        command.Parameters.AddWithValue("$by", decidedBy);
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$reason", (object?)reason ?? DBNull.Value);
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<bool> ConsumeAsync(string id, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE approvals SET status = 'consumed', consumed_at = $at WHERE id = $id AND status = 'approved'";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    private List<ApprovalRecord> Query(string where, Action<SqliteCommand> bind, int limit)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {Columns} FROM approvals {where} LIMIT {limit}";
        bind(command);
        using var reader = command.ExecuteReader();
        var result = new List<ApprovalRecord>();
        while (reader.Read())
        {
            result.Add(new ApprovalRecord
            {
                Id = reader.GetString(0),
                Agent = reader.GetString(1),
                Run = reader.IsDBNull(2) ? null : reader.GetString(2),
                User = reader.IsDBNull(3) ? null : reader.GetString(3),
                Server = reader.GetString(4),
                Tool = reader.GetString(5),
                Arguments = reader.GetString(6),
                ArgumentsSha256 = reader.GetString(7),
                RequestedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
                ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(9)),
                Status = reader.GetString(10),
                DecidedBy = reader.IsDBNull(11) ? null : reader.GetString(11),
                DecidedAt = reader.IsDBNull(12) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(12)),
                Reason = reader.IsDBNull(13) ? null : reader.GetString(13),
                ConsumedAt = reader.IsDBNull(14) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(14)),
            });
        }

        return result;
    }
}

/// <summary>Idempotency keys in SQLite; the in-flight row is committed before the call is sent.</summary>
public sealed class SqliteIdempotencyStore(SqliteDatabase database) : IIdempotencyStore
{
    public Task<IdempotencyRecord?> GetAsync(string agent, string key, DateTimeOffset now, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT agent, key, server, tool, arguments_sha256, state, result, created_at, expires_at
            FROM idempotency WHERE agent = $agent AND key = $key AND expires_at > $now
            """;
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return Task.FromResult<IdempotencyRecord?>(null);
        }

        return Task.FromResult<IdempotencyRecord?>(new IdempotencyRecord
        {
            Agent = reader.GetString(0),
            Key = reader.GetString(1),
            Server = reader.GetString(2),
            Tool = reader.GetString(3),
            ArgumentsSha256 = reader.GetString(4),
            State = reader.GetString(5),
            Result = reader.IsDBNull(6) ? null : reader.GetString(6),
            CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
            ExpiresAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
        });
    }

    public Task<bool> BeginAsync(IdempotencyRecord r, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        using (var expired = connection.CreateCommand())
        {
            expired.Transaction = transaction;
            expired.CommandText = "DELETE FROM idempotency WHERE agent = $agent AND key = $key AND expires_at <= $now";
            expired.Parameters.AddWithValue("$agent", r.Agent);
            expired.Parameters.AddWithValue("$key", r.Key);
            expired.Parameters.AddWithValue("$now", r.CreatedAt.ToUnixTimeMilliseconds());
            expired.ExecuteNonQuery();
        }

        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO idempotency (agent, key, server, tool, arguments_sha256, state, result, created_at, expires_at)
            VALUES ($agent, $key, $server, $tool, $sha, $state, NULL, $created, $expires)
            ON CONFLICT (agent, key) DO NOTHING
            """;
        command.Parameters.AddWithValue("$agent", r.Agent);
        command.Parameters.AddWithValue("$key", r.Key);
        command.Parameters.AddWithValue("$server", r.Server);
        command.Parameters.AddWithValue("$tool", r.Tool);
        command.Parameters.AddWithValue("$sha", r.ArgumentsSha256);
        command.Parameters.AddWithValue("$state", r.State);
        command.Parameters.AddWithValue("$created", r.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", r.ExpiresAt.ToUnixTimeMilliseconds());
        var inserted = command.ExecuteNonQuery() == 1;
        transaction.Commit();
        return Task.FromResult(inserted);
    }

    public Task CompleteAsync(string agent, string key, string result, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE idempotency SET state = 'done', result = $result WHERE agent = $agent AND key = $key";
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$key", key);
        command.Parameters.AddWithValue("$result", result);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task MarkUnknownAsync(string agent, string key, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE idempotency SET state = 'unknown' WHERE agent = $agent AND key = $key AND state = 'in_flight'";
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$key", key);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task ForgetAsync(string agent, string key, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM idempotency WHERE agent = $agent AND key = $key AND state = 'in_flight'";
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$key", key);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<int> MarkInFlightUnknownAsync(CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE idempotency SET state = 'unknown' WHERE state = 'in_flight'";
        return Task.FromResult(command.ExecuteNonQuery());
    }

    public Task<long> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken) =>
        Task.FromResult(SqliteDatabase.DeleteInChunks(database, "idempotency", "rowid", "expires_at", before.ToUnixTimeMilliseconds(), 2000, cancellationToken));
}

/// <summary>Sealed per-user MCP tokens in SQLite (the vault seals and opens them; this store never sees a token).</summary>
public sealed class SqliteMcpTokenStore(SqliteDatabase database) : IMcpTokenStore
{
    public Task PutAsync(McpTokenRecord r, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO mcp_tokens (server, user_name, sealed, key_id, updated_at) VALUES ($server, $user, $sealed, $key, $at)
            ON CONFLICT (server, user_name) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, updated_at = excluded.updated_at
            """;
        command.Parameters.AddWithValue("$server", r.Server);
        command.Parameters.AddWithValue("$user", r.User);
        command.Parameters.AddWithValue("$sealed", r.Sealed);
        command.Parameters.AddWithValue("$key", r.KeyId);
        command.Parameters.AddWithValue("$at", r.UpdatedAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<McpTokenRecord?> GetAsync(string server, string user, CancellationToken cancellationToken) =>
        Task.FromResult(Query("WHERE server = $server AND user_name = $user", c =>
        {
            c.Parameters.AddWithValue("$server", server);
            c.Parameters.AddWithValue("$user", user);
        }).FirstOrDefault());

    public Task<bool> DeleteAsync(string server, string user, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "DELETE FROM mcp_tokens WHERE server = $server AND user_name = $user";
        command.Parameters.AddWithValue("$server", server);
        command.Parameters.AddWithValue("$user", user);
        return Task.FromResult(command.ExecuteNonQuery() == 1);
    }

    public Task<IReadOnlyList<McpTokenRecord>> ListAsync(string? server, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<McpTokenRecord>>(Query(server is null ? "" : "WHERE server = $server", c => c.Parameters.AddWithValue("$server", (object?)server ?? DBNull.Value)));

    private List<McpTokenRecord> Query(string where, Action<SqliteCommand> bind)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT server, user_name, sealed, key_id, updated_at FROM mcp_tokens {where} ORDER BY updated_at DESC";
        bind(command);
        using var reader = command.ExecuteReader();
        var result = new List<McpTokenRecord>();
        while (reader.Read())
        {
            result.Add(new McpTokenRecord(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))));
        }

        return result;
    }
}
