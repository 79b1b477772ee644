using System.Text;
using System.Text.Json;
using Flotilla.Storage.Sqlite;

namespace Flotilla.Storage.Traces;

/// <summary>
/// An append-only spill file (JSON lines, owner-only) for traces the store could not take: written when a batch cannot be
/// stored, replayed into the store when it recovers and at start-up, then removed. Traces carry spend, so they are not
/// dropped while any place can hold them. Replay is safe to repeat because appending to the store is idempotent per trace id.
/// </summary>
public sealed class TraceJournal(string path)
{
    public const string FileName = "traces.spill.jsonl";

    public string Path { get; } = path;

    public bool HasEntries => File.Exists(Path) && new FileInfo(Path).Length > 0;

    /// <summary>Appends and flushes to disk; throws <see cref="IOException"/> when the file cannot be written (e.g. the disk is full).</summary>
    public void Append(IReadOnlyList<TraceRecord> batch)
    {
        var text = new StringBuilder();
        foreach (var trace in batch)
        {
            text.Append(JsonSerializer.Serialize(trace, StorageJson.Default.TraceRecord)).Append('\n');
        }

        var options = new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(Path, options);
        var start = stream.Length;
        try
        {
            stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
            stream.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // A half-written batch would be replayed as a partial line; cut back to where this append began.
            stream.SetLength(start);
            throw;
        }
    }

    /// <summary>
    /// Moves every journalled trace into <paramref name="store"/> in batches and deletes the file; returns how many traces it held.
    /// A line that cannot be read (a torn write at a crash) is skipped and counted as unreadable.
    /// Throws what the store throws, leaving the journal in place for the next try.
    /// </summary>
    public async Task<(int Replayed, int Unreadable)> ReplayAsync(ITraceStore store, int batchSize, CancellationToken cancellationToken)
    {
        if (!File.Exists(Path))
        {
            return (0, 0);
        }

        var batch = new List<TraceRecord>(batchSize);
        int replayed = 0, unreadable = 0;
        foreach (var line in File.ReadLines(Path))
        {
            if (line.Length == 0)
            {
                continue;
            }

            TraceRecord? trace = null;
            try
            {
                trace = JsonSerializer.Deserialize(line, StorageJson.Default.TraceRecord);
            }
            catch (JsonException)
            {
            }

            if (trace is null)
            {
                unreadable++;
                continue;
            }

            batch.Add(trace);
            if (batch.Count == batchSize)
            {
                await store.AppendAsync(batch, cancellationToken);
                replayed += batch.Count;
                batch.Clear();
            }
        }

        if (batch.Count > 0)
        {
            await store.AppendAsync(batch, cancellationToken);
            replayed += batch.Count;
        }

        File.Delete(Path);
        return (replayed, unreadable);
    }
}
