using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Flotilla.Storage.Traces;
using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>
/// Traces in the embedded SQLite file; a batch is one transaction, with its usage buckets. Appending is idempotent per trace id:
/// a trace written twice (a replayed spill journal, a retry after an ambiguous failure) is stored and counted once.
/// </summary>
public sealed class SqliteTraceStore(SqliteDatabase database) : ITraceStore
{
    public Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
        {
            return Task.CompletedTask;
        }

        using var connection = database.Open();
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO traces (id, started_at, operation, agent, team, metadata, requested_model, final_target, stream,
                fell_back, attempts, status, input_tokens, output_tokens, cost_usd, ttft_ms, latency_ms, error_code, error, cache, policy, guardrails, trace_id, kind, tool)
            VALUES ($id, $started_at, $operation, $agent, $team, $metadata, $requested_model, $final_target, $stream,
                $fell_back, $attempts, $status, $input_tokens, $output_tokens, $cost_usd, $ttft_ms, $latency_ms, $error_code, $error, $cache, $policy, $guardrails, $trace_id, $kind, $tool)
            ON CONFLICT (id) DO NOTHING
            """;
        string[] names = ["$id", "$started_at", "$operation", "$agent", "$team", "$metadata", "$requested_model", "$final_target", "$stream",
            "$fell_back", "$attempts", "$status", "$input_tokens", "$output_tokens", "$cost_usd", "$ttft_ms", "$latency_ms", "$error_code", "$error", "$cache",
            "$policy", "$guardrails", "$trace_id", "$kind", "$tool"];
        var parameters = names.Select(n => command.Parameters.Add(new SqliteParameter(n, null))).ToArray();
        command.Prepare();
        var inserted = new List<TraceRecord>(batch.Count);
        foreach (var t in batch)
        {
            object?[] values =
            [
                t.Id, t.StartedAt.ToUnixTimeMilliseconds(), t.Operation, t.Agent, t.Team,
                t.Metadata is { Count: > 0 } ? JsonSerializer.Serialize(t.Metadata, StorageJson.Default.IReadOnlyDictionaryStringString) : null,
                t.RequestedModel, t.FinalTarget, t.Stream ? 1 : 0, t.FellBack ? 1 : 0,
                JsonSerializer.Serialize(t.Attempts, StorageJson.Default.IReadOnlyListTraceAttempt),
                t.Status, t.InputTokens, t.OutputTokens, t.CostUsd.ToString(CultureInfo.InvariantCulture), t.TtftMs, t.LatencyMs,
                t.ErrorCode, t.Error, t.Cache,
                t.Policy is { Count: > 0 } ? JsonSerializer.Serialize(t.Policy, StorageJson.Default.IReadOnlyListString) : null,
                t.Guardrails is { Count: > 0 } ? JsonSerializer.Serialize(t.Guardrails, StorageJson.Default.IReadOnlyListTraceVerdict) : null,
                t.TraceId, t.Kind,
                t.Tool is { } tool ? JsonSerializer.Serialize(tool, StorageJson.Default.TraceToolCall) : null,
            ];
            for (var i = 0; i < values.Length; i++)
            {
                parameters[i].Value = values[i] ?? DBNull.Value;
            }

            if (command.ExecuteNonQuery() == 1)
            {
                inserted.Add(t);
            }
        }

        SqliteUsageStore.Accumulate(connection, transaction, inserted);
        transaction.Commit();
        return Task.CompletedTask;
    }

    public Task<long> PruneAsync(DateTimeOffset before, int chunk, CancellationToken cancellationToken) =>
        Task.FromResult(SqliteDatabase.DeleteInChunks(database, "traces", "rowid", "started_at", before.ToUnixTimeMilliseconds(), chunk, cancellationToken));

    public Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        var where = new List<string>();
        if (query.Id is not null)
        {
            // A record id, or a W3C trace id (X-Flotilla-Trace-Id), which several calls of one caller's trace may share.
            where.Add("(id = $id OR trace_id = $id)");
            command.Parameters.AddWithValue("$id", query.Id);
        }

        if (query.Agent is not null)
        {
            where.Add("agent = $agent");
            command.Parameters.AddWithValue("$agent", query.Agent);
        }

        if (query.Artifact is not null)
        {
            where.Add("kind = 'tool_call' AND json_extract(tool, '$.artifact') = $artifact");
            command.Parameters.AddWithValue("$artifact", query.Artifact);
        }

        if (query.Since is { } since)
        {
            where.Add("started_at >= $since");
            command.Parameters.AddWithValue("$since", since.ToUnixTimeMilliseconds());
        }

        command.CommandText = $"""
            SELECT id, started_at, operation, agent, team, metadata, requested_model, final_target, stream, fell_back, attempts, status,
                input_tokens, output_tokens, cost_usd, ttft_ms, latency_ms, error_code, error, cache, policy, guardrails, trace_id, kind, tool
            FROM traces {(where.Count == 0 ? "" : "WHERE " + string.Join(" AND ", where))}
            ORDER BY started_at DESC, rowid DESC LIMIT $limit
            """;
        command.Parameters.AddWithValue("$limit", Math.Clamp(query.Limit, 1, 10_000));
        var result = new List<TraceRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            result.Add(new TraceRecord
            {
                Id = reader.GetString(0),
                StartedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                Operation = reader.GetString(2),
                Agent = reader.IsDBNull(3) ? null : reader.GetString(3),
                Team = reader.IsDBNull(4) ? null : reader.GetString(4),
                Metadata = reader.IsDBNull(5) ? null : JsonSerializer.Deserialize(reader.GetString(5), StorageJson.Default.IReadOnlyDictionaryStringString),
                RequestedModel = reader.IsDBNull(6) ? null : reader.GetString(6),
                FinalTarget = reader.IsDBNull(7) ? null : reader.GetString(7),
                Stream = reader.GetInt64(8) != 0,
                FellBack = reader.GetInt64(9) != 0,
                Attempts = JsonSerializer.Deserialize(reader.GetString(10), StorageJson.Default.IReadOnlyListTraceAttempt) ?? [],
                Status = reader.GetInt32(11),
                InputTokens = reader.GetInt64(12),
                OutputTokens = reader.GetInt64(13),
                CostUsd = decimal.Parse(reader.GetString(14), CultureInfo.InvariantCulture),
                TtftMs = reader.IsDBNull(15) ? null : reader.GetDouble(15),
                LatencyMs = reader.GetDouble(16),
                ErrorCode = reader.IsDBNull(17) ? null : reader.GetString(17),
                Error = reader.IsDBNull(18) ? null : reader.GetString(18),
                Cache = reader.IsDBNull(19) ? null : reader.GetString(19),
                Policy = reader.IsDBNull(20) ? null : JsonSerializer.Deserialize(reader.GetString(20), StorageJson.Default.IReadOnlyListString),
                Guardrails = reader.IsDBNull(21) ? null : JsonSerializer.Deserialize(reader.GetString(21), StorageJson.Default.IReadOnlyListTraceVerdict),
                TraceId = reader.IsDBNull(22) ? null : reader.GetString(22),
                Kind = reader.IsDBNull(23) ? TraceKinds.ModelCall : reader.GetString(23),
                Tool = reader.IsDBNull(24) ? null : JsonSerializer.Deserialize(reader.GetString(24), StorageJson.Default.TraceToolCall),
            });
        }

        return Task.FromResult<IReadOnlyList<TraceRecord>>(result);
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(IReadOnlyList<TraceAttempt>))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
[JsonSerializable(typeof(IReadOnlyList<string>))]
[JsonSerializable(typeof(IReadOnlyList<TraceVerdict>))]
[JsonSerializable(typeof(TraceRecord))]
[JsonSerializable(typeof(TraceToolCall))]
internal sealed partial class StorageJson : JsonSerializerContext;
