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
        if (other._items is null)
        {
            return;
        }

        foreach (var item in other._items)
        {
            Add(item.Kind, item.Count);
        }
    }

    public readonly IReadOnlyList<GuardrailFinding> ToList() => _items is null ? Array.Empty<GuardrailFinding>() : _items.ToArray();

    /// <summary><c>aws-access-key-id (1), github-token (2)</c>.</summary>
    public readonly string Describe() => _items is null ? "nothing" : string.Join(", ", _items.Select(i => $"{i.Kind} ({i.Count})"));
}
