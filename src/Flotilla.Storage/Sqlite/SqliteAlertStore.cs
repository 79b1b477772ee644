using System.Globalization;
using Flotilla.Storage.Alerts;

namespace Flotilla.Storage.Sqlite;

public sealed class SqliteAlertStore(SqliteDatabase database) : IAlertStore
{
    public Task AddAsync(AlertRecord alert, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT OR IGNORE INTO alerts (id, at, kind, message, applies_per, key, threshold, spent_usd, limit_usd, window_start, window_end, delivery)
            VALUES ($id, $at, $kind, $message, $applies_per, $key, $threshold, $spent, $limit, $window_start, $window_end, $delivery)
            """;
        command.Parameters.AddWithValue("$id", alert.Id);
        command.Parameters.AddWithValue("$at", alert.At.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$kind", alert.Kind);
        command.Parameters.AddWithValue("$message", alert.Message);
        command.Parameters.AddWithValue("$applies_per", (object?)alert.AppliesPer ?? DBNull.Value);
        command.Parameters.AddWithValue("$key", (object?)alert.Key ?? DBNull.Value);
        command.Parameters.AddWithValue("$threshold", (object?)alert.Threshold ?? DBNull.Value);
        command.Parameters.AddWithValue("$spent", (object?)alert.SpentUsd?.ToString(CultureInfo.InvariantCulture) ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", (object?)alert.LimitUsd?.ToString(CultureInfo.InvariantCulture) ?? DBNull.Value);
        command.Parameters.AddWithValue("$window_start", (object?)alert.WindowStart?.ToUnixTimeMilliseconds() ?? DBNull.Value);
        command.Parameters.AddWithValue("$window_end", (object?)alert.WindowEnd?.ToUnixTimeMilliseconds() ?? DBNull.Value);
        command.Parameters.AddWithValue("$delivery", alert.Delivery);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task SetDeliveryAsync(string id, string delivery, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "UPDATE alerts SET delivery = $delivery WHERE id = $id";
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$delivery", delivery);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AlertRecord>> ListAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT id, at, kind, message, applies_per, key, threshold, spent_usd, limit_usd, window_start, window_end, delivery
            FROM alerts WHERE at >= $since ORDER BY at DESC, rowid DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$since", since?.ToUnixTimeMilliseconds() ?? 0);
        command.Parameters.AddWithValue("$limit", Math.Clamp(limit, 1, 10_000));
        using var reader = command.ExecuteReader();
        var result = new List<AlertRecord>();
        while (reader.Read())
        {
            result.Add(new AlertRecord
            {
                Id = reader.GetString(0),
                At = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                Kind = reader.GetString(2),
                Message = reader.GetString(3),
                AppliesPer = reader.IsDBNull(4) ? null : reader.GetString(4),
                Key = reader.IsDBNull(5) ? null : reader.GetString(5),
                Threshold = reader.IsDBNull(6) ? null : reader.GetInt32(6),
                SpentUsd = reader.IsDBNull(7) ? null : decimal.Parse(reader.GetString(7), CultureInfo.InvariantCulture),
                LimitUsd = reader.IsDBNull(8) ? null : decimal.Parse(reader.GetString(8), CultureInfo.InvariantCulture),
                WindowStart = reader.IsDBNull(9) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(9)),
                WindowEnd = reader.IsDBNull(10) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(10)),
                Delivery = reader.GetString(11),
            });
        }

        return Task.FromResult<IReadOnlyList<AlertRecord>>(result);
    }
}
