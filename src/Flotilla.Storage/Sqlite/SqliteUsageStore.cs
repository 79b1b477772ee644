using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>Usage buckets in the embedded SQLite file; <see cref="SqliteTraceStore"/> fills them with each batch.</summary>
public sealed class SqliteUsageStore(SqliteDatabase database) : IUsageStore
{
    /// <summary>Cost is summed as integer nano-dollars so SQLite adds exactly.</summary>
    internal const decimal NanosPerUsd = 1_000_000_000m;

    internal static IEnumerable<(string Dimension, string Value)> Dimensions(TraceRecord trace)
    {
        if (trace.Agent is { } agent) yield return ("agent", agent);
        if (trace.Team is { } team) yield return ("team", team);
        if ((trace.FinalTarget ?? trace.RequestedModel) is { } model) yield return ("model", model);
        if (trace.RequestedModel is { } requested) yield return ("virtual_model", requested);
        if (trace.Metadata is { } metadata)
        {
            foreach (var (key, value) in metadata)
            {
                yield return ("metadata." + key, value);
            }
        }
    }

    /// <summary>Adds a batch's traces to the hourly and minute buckets, inside the caller's transaction.</summary>
    internal static void Accumulate(SqliteConnection connection, SqliteTransaction transaction, IReadOnlyList<TraceRecord> batch)
    {
        var sums = new Dictionary<(string Table, long Bucket, string Dimension, string Value), long[]>();
        foreach (var trace in batch)
        {
            var seconds = trace.StartedAt.ToUnixTimeSeconds();
            long[] increments =
            [
                1, trace.Status >= 400 ? 1 : 0, trace.FellBack ? 1 : 0, trace.Cache == "hit" ? 1 : 0,
                trace.InputTokens, trace.OutputTokens, (long)decimal.Round(trace.CostUsd * NanosPerUsd),
            ];
            foreach (var (dimension, value) in Dimensions(trace))
            {
                Add(("usage_hourly", seconds - (seconds % 3600), dimension, value));
                Add(("usage_minute", seconds - (seconds % 60), dimension, value));
            }

            void Add((string, long, string, string) key)
            {
                if (!sums.TryGetValue(key, out var sum))
                {
                    sums[key] = sum = new long[7];
                }

                for (var i = 0; i < sum.Length; i++)
                {
                    sum[i] += increments[i];
                }
            }
        }

        foreach (var table in new[] { "usage_hourly", "usage_minute" })
        {
            using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"""
                INSERT INTO {table} (bucket, dimension, value, calls, errors, fallbacks, cache_hits, input_tokens, output_tokens, cost_nanos)
                VALUES ($bucket, $dimension, $value, $calls, $errors, $fallbacks, $cache_hits, $input, $output, $cost)
                ON CONFLICT (bucket, dimension, value) DO UPDATE SET
                    calls = calls + excluded.calls, errors = errors + excluded.errors, fallbacks = fallbacks + excluded.fallbacks,
                    cache_hits = cache_hits + excluded.cache_hits, input_tokens = input_tokens + excluded.input_tokens,
                    output_tokens = output_tokens + excluded.output_tokens, cost_nanos = cost_nanos + excluded.cost_nanos
                """;
            string[] names = ["$bucket", "$dimension", "$value", "$calls", "$errors", "$fallbacks", "$cache_hits", "$input", "$output", "$cost"];
            var parameters = names.Select(n => command.Parameters.Add(new SqliteParameter(n, null))).ToArray();
            foreach (var ((t, bucket, dimension, value), sum) in sums)
            {
                if (t != table)
                {
                    continue;
                }

                parameters[0].Value = bucket;
                parameters[1].Value = dimension;
                parameters[2].Value = value;
                for (var i = 0; i < sum.Length; i++)
                {
                    parameters[3 + i].Value = sum[i];
                }

                command.ExecuteNonQuery();
            }
        }
    }

    public Task<IReadOnlyList<UsageRow>> QueryAsync(string dimension, DateTimeOffset since, DateTimeOffset? until, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        var from = since.ToUnixTimeSeconds();
        command.CommandText = """
            SELECT value, SUM(calls), SUM(errors), SUM(fallbacks), SUM(cache_hits), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos)
            FROM usage_hourly WHERE dimension = $dimension AND bucket >= $from AND bucket < $until
            GROUP BY value ORDER BY SUM(cost_nanos) DESC, value
            """;
        command.Parameters.AddWithValue("$dimension", dimension);
        command.Parameters.AddWithValue("$from", from - (from % 3600));
        command.Parameters.AddWithValue("$until", until?.ToUnixTimeSeconds() ?? long.MaxValue);
        using var reader = command.ExecuteReader();
        var rows = new List<UsageRow>();
        while (reader.Read())
        {
            rows.Add(new UsageRow(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7) / NanosPerUsd));
        }

        return Task.FromResult<IReadOnlyList<UsageRow>>(rows);
    }

    public Task<IReadOnlyDictionary<string, decimal>> SpendSinceAsync(string dimension, DateTimeOffset windowStart, CancellationToken cancellationToken)
    {
        // Whole hours from the hourly table, the rest of a partial first hour from the minute table.
        var start = windowStart.ToUnixTimeSeconds();
        var firstFullHour = start % 3600 == 0 ? start : start - (start % 3600) + 3600;
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT value, SUM(cost_nanos) FROM (
                SELECT value, cost_nanos FROM usage_hourly WHERE dimension = $dimension AND bucket >= $full
                UNION ALL
                SELECT value, cost_nanos FROM usage_minute WHERE dimension = $dimension AND bucket >= $start AND bucket < $full)
            GROUP BY value
            """;
        command.Parameters.AddWithValue("$dimension", dimension);
        command.Parameters.AddWithValue("$start", start);
        command.Parameters.AddWithValue("$full", firstFullHour);
        using var reader = command.ExecuteReader();
        var result = new Dictionary<string, decimal>(StringComparer.Ordinal);
        while (reader.Read())
        {
            result[reader.GetString(0)] = reader.GetInt64(1) / NanosPerUsd;
        }

        return Task.FromResult<IReadOnlyDictionary<string, decimal>>(result);
    }

    public Task<long> PruneAsync(DateTimeOffset hourlyBefore, DateTimeOffset minuteBefore, int chunk, CancellationToken cancellationToken) =>
        Task.FromResult(
            SqliteDatabase.DeleteInChunks(database, "usage_hourly", "dimension, bucket, value", "bucket", hourlyBefore.ToUnixTimeSeconds(), chunk, cancellationToken)
            + SqliteDatabase.DeleteInChunks(database, "usage_minute", "dimension, bucket, value", "bucket", minuteBefore.ToUnixTimeSeconds(), chunk, cancellationToken));
}
