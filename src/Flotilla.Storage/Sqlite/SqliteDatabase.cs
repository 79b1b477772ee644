using Microsoft.Data.Sqlite;

namespace Flotilla.Storage.Sqlite;

/// <summary>
/// The embedded store: one SQLite file in the data directory, WAL mode so readers never wait for the batch writer.
/// </summary>
public sealed class SqliteDatabase
{
    private const string Schema = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        CREATE TABLE IF NOT EXISTS traces (
            id TEXT PRIMARY KEY,
            started_at INTEGER NOT NULL,
            operation TEXT NOT NULL,
            agent TEXT,
            team TEXT,
            metadata TEXT,
            requested_model TEXT,
            final_target TEXT,
            stream INTEGER NOT NULL,
            fell_back INTEGER NOT NULL,
            attempts TEXT NOT NULL,
            status INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd TEXT NOT NULL,
            ttft_ms REAL,
            latency_ms REAL NOT NULL,
            error_code TEXT,
            error TEXT,
            cache TEXT,
            policy TEXT,
            guardrails TEXT
        );
        CREATE INDEX IF NOT EXISTS traces_started ON traces (started_at DESC);
        CREATE INDEX IF NOT EXISTS traces_agent_started ON traces (agent, started_at DESC);
        CREATE TABLE IF NOT EXISTS usage_hourly (
            bucket INTEGER NOT NULL, dimension TEXT NOT NULL, value TEXT NOT NULL,
            calls INTEGER NOT NULL, errors INTEGER NOT NULL, fallbacks INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_nanos INTEGER NOT NULL,
            PRIMARY KEY (dimension, bucket, value)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS usage_minute (
            bucket INTEGER NOT NULL, dimension TEXT NOT NULL, value TEXT NOT NULL,
            calls INTEGER NOT NULL, errors INTEGER NOT NULL, fallbacks INTEGER NOT NULL, cache_hits INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost_nanos INTEGER NOT NULL,
            PRIMARY KEY (dimension, bucket, value)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS alerts (
            id TEXT PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
            applies_per TEXT, key TEXT, threshold INTEGER, spent_usd TEXT, limit_usd TEXT,
            window_start INTEGER, window_end INTEGER, delivery TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS alerts_at ON alerts (at DESC);
        CREATE TABLE IF NOT EXISTS fleet_revisions (
            number INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL,
            applied_by TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            changes TEXT NOT NULL,
            yaml TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS agent_keys (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        CREATE TABLE IF NOT EXISTS approvals (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            run TEXT,
            user_name TEXT,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments TEXT NOT NULL,
            arguments_sha256 TEXT NOT NULL,
            requested_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            status TEXT NOT NULL,
            decided_by TEXT,
            decided_at INTEGER,
            reason TEXT,
            consumed_at INTEGER
        );
        CREATE INDEX IF NOT EXISTS approvals_call ON approvals (agent, server, tool, arguments_sha256, requested_at DESC);
        CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, requested_at DESC);
        CREATE TABLE IF NOT EXISTS idempotency (
            agent TEXT NOT NULL,
            key TEXT NOT NULL,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            arguments_sha256 TEXT NOT NULL,
            state TEXT NOT NULL,
            result TEXT,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (agent, key)
        );
        CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires_at);
        CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            parent_id TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            input TEXT NOT NULL,
            output TEXT,
            run_trigger TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            finished_at INTEGER,
            steps INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS runs_agent ON runs (agent, created_at DESC);
        CREATE INDEX IF NOT EXISTS runs_status ON runs (status, created_at);
        CREATE TABLE IF NOT EXISTS run_steps (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            name TEXT,
            request TEXT,
            result TEXT,
            is_error INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd TEXT NOT NULL,
            latency_ms REAL NOT NULL,
            trace_id TEXT,
            approval_id TEXT,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            child_run_id TEXT,
            PRIMARY KEY (run_id, seq)
        );
        CREATE TABLE IF NOT EXISTS schedule_beats (
            agent TEXT PRIMARY KEY,
            last_beat INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS responses (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            previous_id TEXT,
            messages TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires_at);
        CREATE TABLE IF NOT EXISTS mcp_tokens (
            server TEXT NOT NULL,
            user_name TEXT NOT NULL,
            sealed TEXT NOT NULL,
            key_id TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (server, user_name)
        );
        """;

    public SqliteDatabase(string dataDirectory)
    {
        Directory.CreateDirectory(dataDirectory);
        Path = System.IO.Path.Combine(dataDirectory, "flotilla.db");
        RestrictToOwner(Path);
        ConnectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
        }.ToString();
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = Schema;
        command.ExecuteNonQuery();
        AddMissingColumns(connection, "traces", ("policy", "TEXT"), ("guardrails", "TEXT"), ("trace_id", "TEXT"), ("kind", "TEXT"), ("tool", "TEXT"));
        using var index = connection.CreateCommand();
        index.CommandText = "CREATE INDEX IF NOT EXISTS traces_trace_id ON traces (trace_id)";
        index.ExecuteNonQuery();
    }

    public string Path { get; }

    /// <summary>
    /// The database holds traces, metadata and key hashes: owner-only (0600). SQLite gives its -wal and -shm files the
    /// database file's mode, so creating that file first, empty, with the right mode covers all three.
    /// </summary>
    private static void RestrictToOwner(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (!File.Exists(path))
        {
            using var _ = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = OwnerReadWrite });
            return;
        }

        foreach (var file in new[] { path, path + "-wal", path + "-shm" })
        {
            if (File.Exists(file) && File.GetUnixFileMode(file) != OwnerReadWrite)
            {
                File.SetUnixFileMode(file, OwnerReadWrite);
            }
        }
    }

    /// <summary>Brings a data directory made by an earlier version up to date: columns are only ever added.</summary>
    private static void AddMissingColumns(SqliteConnection connection, string table, params (string Name, string Type)[] columns)
    {
        var existing = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        using (var info = connection.CreateCommand())
        {
            info.CommandText = $"PRAGMA table_info({table})";
            using var reader = info.ExecuteReader();
            while (reader.Read())
            {
                existing.Add(reader.GetString(1));
            }
        }

        foreach (var (name, type) in columns.Where(c => !existing.Contains(c.Name)))
        {
            using var alter = connection.CreateCommand();
            alter.CommandText = $"ALTER TABLE {table} ADD COLUMN {name} {type}";
            alter.ExecuteNonQuery();
        }
    }

    public string ConnectionString { get; }

    /// <summary>
    /// Deletes rows (identified by <paramref name="key"/>, the rowid or a WITHOUT ROWID table's primary key) whose <paramref name="column"/> is below <paramref name="before"/>, <paramref name="chunk"/> rows per
    /// transaction, so the trace writer never waits long for the write lock. Returns the number deleted.
    /// </summary>
    internal static long DeleteInChunks(SqliteDatabase database, string table, string key, string column, long before, int chunk, CancellationToken cancellationToken)
    {
        using var connection = database.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} WHERE {column} < $before LIMIT $chunk)";
        command.Parameters.AddWithValue("$before", before);
        command.Parameters.AddWithValue("$chunk", chunk);
        long total = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var deleted = command.ExecuteNonQuery();
            total += deleted;
            if (deleted < chunk)
            {
                break;
            }
        }

        return total;
    }

    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout = 5000;";
        pragma.ExecuteNonQuery();
        return connection;
    }
}
