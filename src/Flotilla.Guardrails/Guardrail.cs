using Flotilla.Fleet;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails;

/// <summary>One configured guardrail of a hook.</summary>
internal abstract class Guardrail(GuardrailRef config)
{
    public GuardrailRef Config { get; } = config;

    /// <summary>Redact guardrails change text and so run one after another; block and audit ones only look, and run together.</summary>
    public bool IsMutator => Config.Action == GuardrailAction.Redact;
}

/// <summary>What a local guardrail made of one text.</summary>
/// <param name="Triggered">Found something (a match, a score at or above the threshold).</param>
/// <param name="Score">prompt-injection only.</param>
/// <param name="Failure">Could not decide (a custom pattern timed out); the guardrail then blocks unless it audits.</param>
internal readonly record struct LocalScan(bool Triggered, double? Score = null, string? Failure = null);

/// <summary>A guardrail that runs in-process, synchronously, over one text at a time.</summary>
internal abstract class LocalGuardrail(GuardrailRef config) : Guardrail(config)
{
    /// <summary>
    /// Scans one text: counts what it finds in <paramref name="tally"/>; when <paramref name="collect"/> is set and it
    /// triggers, adds the edits that would redact it to <paramref name="edits"/> (created on the first).
    /// </summary>
    public abstract LocalScan Scan(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits);

    /// <summary>
    /// Whether this guardrail's findings are tokens or runs of suspicious words, so a streamed answer need only hold back
    /// what <see cref="StreamTail.Hold"/> says; otherwise (phrases, an operator's own patterns) a stream holds back the
    /// guard's whole hold-back.
    /// </summary>
    public virtual bool HoldsByWord => false;

    private readonly ScanMemory _memory = new();

    /// <summary>How many texts' scans are remembered (tests).</summary>
    internal int Remembered => _memory.Count;

    /// <summary>
    /// <see cref="Scan"/>, answered from memory for a long text this guardrail has scanned before (a loop resends its
    /// whole history on every call). A remembered text is byte-identical and this guardrail's configuration is the same
    /// (a guardrail is rebuilt when the fleet changes), so the answer, edits included, is what a scan would give. A scan
    /// that failed is never remembered.
    /// </summary>
    public LocalScan ScanRemembering(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        if (!ScanMemory.Worthwhile(text))
        {
            return Scan(text, ref tally, collect, ref edits);
        }

        var key = ScanMemory.Key(text);
        if (_memory.TryGet(key, out var seen) && (!collect || !seen.Scan.Triggered || seen.Edits is not null))
        {
            tally.AddAll(seen.Findings);
            if (collect && seen.Edits is { Count: > 0 })
            {
                (edits ??= []).AddRange(seen.Edits);
            }

            return seen.Scan;
        }

        var own = default(FindingTally);
        var before = edits?.Count ?? 0;
        var scan = Scan(text, ref own, collect, ref edits);
        tally.AddAll(own);
        if (scan.Failure is null)
        {
            var found = collect ? (edits is null ? [] : edits.GetRange(before, edits.Count - before).ToArray()) : null;
            _memory.Remember(key, new RememberedScan(scan, own.ToList(), found));
        }

        return scan;
    }

    /// <summary>A short account of a triggered scan for the verdict and the block reason; never the matched text.</summary>
    public virtual string Describe(in FindingTally tally, double? score) => "found " + tally.Describe();
}

/// <summary>Kinds and counts of findings, allocated on the first one.</summary>
internal struct FindingTally
{
    private List<GuardrailFinding>? _items;

    public int Total { get; private set; }

    public void Add(string kind, int count = 1)
    {
        Total += count;
        _items ??= new List<GuardrailFinding>(2);
        for (var i = 0; i < _items.Count; i++)
        {
            if (ReferenceEquals(_items[i].Kind, kind) || _items[i].Kind == kind)
            {
                _items[i] = _items[i] with { Count = _items[i].Count + count };
                return;
            }
        }

        _items.Add(new GuardrailFinding(kind, count));
    }

    public void AddAll(in FindingTally other)
    {
        if (other._items is not null)
        {
            AddAll(other._items);
        }
    }

    public void AddAll(IReadOnlyList<GuardrailFinding> findings)
    {
        for (var i = 0; i < findings.Count; i++)
        {
            Add(findings[i].Kind, findings[i].Count);
        }
    }

    public readonly IReadOnlyList<GuardrailFinding> ToList() => _items is null ? Array.Empty<GuardrailFinding>() : _items.ToArray();

    /// <summary><c>aws-access-key-id (1), github-token (2)</c>.</summary>
    public readonly string Describe() => _items is null ? "nothing" : string.Join(", ", _items.Select(i => $"{i.Kind} ({i.Count})"));
}
