using System.Text.Json;
using Flotilla.Storage.Fleet;
using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>Fleet revisions in the embedded SQLite file.</summary>
public sealed class SqliteFleetRevisionStore(SqliteDatabase database) : IFleetRevisionStore
{
    public Task<FleetRevision> AddAsync(string yaml, string sha256, string appliedBy, IReadOnlyList<string> changes, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO fleet_revisions (number, applied_at, applied_by, sha256, changes, yaml)
            VALUES ((SELECT COALESCE(MAX(number), 0) + 1 FROM fleet_revisions), $at, $by, $sha, $changes, $yaml)
            RETURNING number
            """;
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$by", appliedBy);
        command.Parameters.AddWithValue("$sha", sha256);
        command.Parameters.AddWithValue("$changes", JsonSerializer.Serialize(changes, StorageJson.Default.IReadOnlyListString));
        command.Parameters.AddWithValue("$yaml", yaml);
        var number = Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        transaction.Commit();
        return Task.FromResult(new FleetRevision(number, at, appliedBy, sha256, changes, yaml));
    }

    public Task<FleetRevision?> GetAsync(int number, CancellationToken cancellationToken) =>
        Task.FromResult(Query("WHERE number = $number", number, 1, withYaml: true).FirstOrDefault());

    public Task<FleetRevision?> LatestAsync(CancellationToken cancellationToken) =>
        Task.FromResult(Query("", null, 1, withYaml: true).FirstOrDefault());

    public Task<IReadOnlyList<FleetRevision>> ListAsync(int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<FleetRevision>>(Query("", null, limit, withYaml: false));

    private List<FleetRevision> Query(string where, int? number, int limit, bool withYaml)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT number, applied_at, applied_by, sha256, changes, {(withYaml ? "yaml" : "NULL")}
            FROM fleet_revisions {where} ORDER BY number DESC LIMIT $limit
            """;
        if (number is { } n)
        {
            command.Parameters.AddWithValue("$number", n);
        }

        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        var result = new List<FleetRevision>();
        while (reader.Read())
        {
            result.Add(new FleetRevision(
                reader.GetInt32(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3),
                JsonSerializer.Deserialize(reader.GetString(4), StorageJson.Default.IReadOnlyListString) ?? [],
                reader.IsDBNull(5) ? null : reader.GetString(5)));
        }

        return result;
    }
}
