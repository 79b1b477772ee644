using System.Globalization;
using Flotilla.Storage.Runs;
using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>Runs and their steps in SQLite: every write is committed before the caller hears of it, so a step is durable before the next begins.</summary>
public sealed class SqliteRunStore(SqliteDatabase database) : IRunStore
{
    private const string RunColumns = "id, agent, parent_id, status, reason, input, output, run_trigger, created_at, updated_at, finished_at, steps, input_tokens, output_tokens, cost_usd";
    private const string StepColumns = "run_id, seq, kind, status, name, request, result, is_error, input_tokens, output_tokens, cost_usd, latency_ms, trace_id, approval_id, started_at, finished_at, child_run_id";

    public Task CreateAsync(RunRecord run, CancellationToken cancellationToken) => WriteRunAsync(run, insert: true);

    public Task UpdateAsync(RunRecord run, CancellationToken cancellationToken) => WriteRunAsync(run, insert: false);

    private Task WriteRunAsync(RunRecord r, bool insert)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = insert
            ? $"INSERT INTO runs ({RunColumns}) VALUES ($id, $agent, $parent, $status, $reason, $input, $output, $trigger, $created, $updated, $finished, $steps, $in, $out, $cost)"
            : """
              UPDATE runs SET status = $status, reason = $reason, output = $output, updated_at = $updated, finished_at = $finished,
                  steps = $steps, input_tokens = $in, output_tokens = $out, cost_usd = $cost
              WHERE id = $id
              """;
        command.Parameters.AddWithValue("$id", r.Id);
        command.Parameters.AddWithValue("$agent", r.Agent);
        command.Parameters.AddWithValue("$parent", (object?)r.ParentId ?? DBNull.Value);
        command.Parameters.AddWithValue("$status", r.Status);
        command.Parameters.AddWithValue("$reason", (object?)r.Reason ?? DBNull.Value);
        command.Parameters.AddWithValue("$input", r.Input);
        command.Parameters.AddWithValue("$output", (object?)r.Output ?? DBNull.Value);
        command.Parameters.AddWithValue("$trigger", r.Trigger);
        command.Parameters.AddWithValue("$created", r.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$updated", r.UpdatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$finished", r.FinishedAt is { } f ? f.ToUnixTimeMilliseconds() : DBNull.Value);
        command.Parameters.AddWithValue("$steps", r.Steps);
        command.Parameters.AddWithValue("$in", r.InputTokens);
        command.Parameters.AddWithValue("$out", r.OutputTokens);
        command.Parameters.AddWithValue("$cost", r.CostUsd.ToString(CultureInfo.InvariantCulture));
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<RunRecord?> GetAsync(string id, CancellationToken cancellationToken) =>
        Task.FromResult(QueryRuns("WHERE id = $id", c => c.Parameters.AddWithValue("$id", id), 1) is [var run, ..] ? run : null);

    public Task<IReadOnlyList<RunRecord>> ListAsync(string? agent, string? status, int limit, CancellationToken cancellationToken) =>
        Task.FromResult(QueryRuns("WHERE ($agent IS NULL OR agent = $agent) AND ($status IS NULL OR status = $status) ORDER BY created_at DESC, id", c =>
        {
            c.Parameters.AddWithValue("$agent", (object?)agent ?? DBNull.Value);
            c.Parameters.AddWithValue("$status", (object?)status ?? DBNull.Value);
        }, limit));

    public Task<IReadOnlyList<RunRecord>> RunningAsync(CancellationToken cancellationToken) =>
        Task.FromResult(QueryRuns("WHERE status = $status ORDER BY created_at", c => c.Parameters.AddWithValue("$status", RunStatus.Running), int.MaxValue));

    private IReadOnlyList<RunRecord> QueryRuns(string where, Action<SqliteCommand> bind, int limit)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {RunColumns} FROM runs {where} LIMIT $limit";
        bind(command);
        command.Parameters.AddWithValue("$limit", limit);
        using var reader = command.ExecuteReader();
        var runs = new List<RunRecord>();
        while (reader.Read())
        {
            runs.Add(new RunRecord
            {
                Id = reader.GetString(0),
                Agent = reader.GetString(1),
                ParentId = reader.IsDBNull(2) ? null : reader.GetString(2),
                Status = reader.GetString(3),
                Reason = reader.IsDBNull(4) ? null : reader.GetString(4),
                Input = reader.GetString(5),
                Output = reader.IsDBNull(6) ? null : reader.GetString(6),
                Trigger = reader.GetString(7),
                CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(8)),
                UpdatedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(9)),
                FinishedAt = reader.IsDBNull(10) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(10)),
                Steps = reader.GetInt32(11),
                InputTokens = reader.GetInt64(12),
                OutputTokens = reader.GetInt64(13),
                CostUsd = decimal.Parse(reader.GetString(14), CultureInfo.InvariantCulture),
            });
        }

        return runs;
    }

    public Task PutStepAsync(RunStepRecord s, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            INSERT OR REPLACE INTO run_steps ({StepColumns})
            VALUES ($run, $seq, $kind, $status, $name, $request, $result, $error, $in, $out, $cost, $latency, $trace, $approval, $started, $finished, $child)
            """;
        command.Parameters.AddWithValue("$run", s.RunId);
        command.Parameters.AddWithValue("$seq", s.Seq);
        command.Parameters.AddWithValue("$kind", s.Kind);
        command.Parameters.AddWithValue("$status", s.Status);
        command.Parameters.AddWithValue("$name", (object?)s.Name ?? DBNull.Value);
        command.Parameters.AddWithValue("$request", (object?)s.Request ?? DBNull.Value);
        command.Parameters.AddWithValue("$result", (object?)s.Result ?? DBNull.Value);
        command.Parameters.AddWithValue("$error", s.IsError ? 1 : 0);
        command.Parameters.AddWithValue("$in", s.InputTokens);
        command.Parameters.AddWithValue("$out", s.OutputTokens);
        command.Parameters.AddWithValue("$cost", s.CostUsd.ToString(CultureInfo.InvariantCulture));
        command.Parameters.AddWithValue("$latency", s.LatencyMs);
        command.Parameters.AddWithValue("$trace", (object?)s.TraceId ?? DBNull.Value);
        command.Parameters.AddWithValue("$approval", (object?)s.ApprovalId ?? DBNull.Value);
        command.Parameters.AddWithValue("$started", s.StartedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$finished", s.FinishedAt is { } f ? f.ToUnixTimeMilliseconds() : DBNull.Value);
        command.Parameters.AddWithValue("$child", (object?)s.ChildRunId ?? DBNull.Value);
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<RunStepRecord>> StepsAsync(string runId, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {StepColumns} FROM run_steps WHERE run_id = $run ORDER BY seq";
        command.Parameters.AddWithValue("$run", runId);
        using var reader = command.ExecuteReader();
        var steps = new List<RunStepRecord>();
        while (reader.Read())
        {
            steps.Add(new RunStepRecord
            {
                RunId = reader.GetString(0),
                Seq = reader.GetInt32(1),
                Kind = reader.GetString(2),
                Status = reader.GetString(3),
                Name = reader.IsDBNull(4) ? null : reader.GetString(4),
                Request = reader.IsDBNull(5) ? null : reader.GetString(5),
                Result = reader.IsDBNull(6) ? null : reader.GetString(6),
                IsError = reader.GetInt64(7) != 0,
                InputTokens = reader.GetInt64(8),
                OutputTokens = reader.GetInt64(9),
                CostUsd = decimal.Parse(reader.GetString(10), CultureInfo.InvariantCulture),
                LatencyMs = reader.GetDouble(11),
                TraceId = reader.IsDBNull(12) ? null : reader.GetString(12),
                ApprovalId = reader.IsDBNull(13) ? null : reader.GetString(13),
                StartedAt = DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(14)),
                FinishedAt = reader.IsDBNull(15) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(15)),
                ChildRunId = reader.IsDBNull(16) ? null : reader.GetString(16),
            });
        }

        return Task.FromResult<IReadOnlyList<RunStepRecord>>(steps);
    }

    public Task<int> ActiveCountAsync(string agent, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM runs WHERE agent = $agent AND status IN ($running, $awaiting, $intervention)";
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$running", RunStatus.Running);
        command.Parameters.AddWithValue("$awaiting", RunStatus.AwaitingApproval);
        command.Parameters.AddWithValue("$intervention", RunStatus.NeedsIntervention);
        return Task.FromResult(Convert.ToInt32(command.ExecuteScalar(), CultureInfo.InvariantCulture));
    }

    public Task<DateTimeOffset?> LastBeatAsync(string agent, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT last_beat FROM schedule_beats WHERE agent = $agent";
        command.Parameters.AddWithValue("$agent", agent);
        return Task.FromResult(command.ExecuteScalar() is long at ? DateTimeOffset.FromUnixTimeMilliseconds(at) : (DateTimeOffset?)null);
    }

    public Task SetLastBeatAsync(string agent, DateTimeOffset at, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO schedule_beats (agent, last_beat) VALUES ($agent, $at) ON CONFLICT (agent) DO UPDATE SET last_beat = excluded.last_beat";
        command.Parameters.AddWithValue("$agent", agent);
        command.Parameters.AddWithValue("$at", at.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
        return Task.CompletedTask;
    }
}
