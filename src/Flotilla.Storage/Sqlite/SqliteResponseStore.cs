using Flotilla.Storage.Responses;

namespace Flotilla.Storage.Sqlite;

/// <summary>Served responses in SQLite, one row per turn, linked to the turn they continued; a conversation is read in one recursive query.</summary>
public sealed class SqliteResponseStore(SqliteDatabase database) : IResponseStore
{
    /// <summary>Longest chain followed: far beyond any loop's step limit, and a bound on a corrupt cycle.</summary>
    private const int MaxTurns = 100_000;

    public Task PutAsync(StoredResponse r, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO responses (id, agent, previous_id, messages, created_at, expires_at)
            VALUES ($id, $agent, $previous, $messages, $created, $expires)
            """;
        command.Parameters.AddWithValue("$id", r.Id);
        command.Parameters.AddWithValue("$agent", r.Agent);
        command.Parameters.AddWithValue("$previous", (object?)r.PreviousId ?? DBNull.Value);
        command.Parameters.AddWithValue("$messages", r.Messages);
        command.Parameters.AddWithValue("$created", r.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$expires", r.ExpiresAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>?> GetConversationAsync(string agent, string id, DateTimeOffset now, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            WITH RECURSIVE chain (id, previous_id, messages, depth) AS (
                SELECT id, previous_id, messages, 0 FROM responses WHERE id = $id AND agent = $agent AND expires_at > $now
                UNION ALL
                SELECT r.id, r.previous_id, r.messages, c.depth + 1 FROM responses r JOIN chain c ON r.id = c.previous_id
                WHERE r.agent = $agent AND r.expires_at > $now AND c.depth < {MaxTurns}
            )
            SELECT previous_id, messages FROM chain ORDER BY depth DESC
            """;
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$now", now.ToUnixTimeMilliseconds());
        using var reader = command.ExecuteReader();
        var turns = new List<string>();
        var first = true;
        while (reader.Read())
        {
            // The oldest turn comes first; if it still points further back, a link in the chain has expired or gone.
            if (first && !reader.IsDBNull(0))
            {
                return Task.FromResult<IReadOnlyList<string>?>(null);
            }

            first = false;
            turns.Add(reader.GetString(1));
        }

        return Task.FromResult<IReadOnlyList<string>?>(turns.Count == 0 ? null : turns);
    }

    public Task<long> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        Task.FromResult(SqliteDatabase.DeleteInChunks(database, "responses", "rowid", "expires_at", now.ToUnixTimeMilliseconds(), 2000, cancellationToken));
}
