using System.Collections.Concurrent;
using System.Text;

namespace Flotilla.Guardrails.Text;

/// <summary>A range of a text and what replaces it.</summary>
internal readonly record struct TextEdit(int Start, int Length, string Kind, string Replacement)
{
    public int End => Start + Length;
}

/// <summary>Applies findings to a text: each found range is replaced by a label.</summary>
/// <summary>A detector's scan: adds what it finds in a text to a list created on the first finding.</summary>
internal delegate void TextScanner(string text, ref List<TextFinding>? found);

internal static class TextEdits
{
    /// <summary>Every finding of <paramref name="scan"/>; an empty array, allocating nothing, when there is none.</summary>
    public static IReadOnlyList<TextFinding> Find(string text, TextScanner scan)
    {
        List<TextFinding>? found = null;
        scan(text, ref found);
        return found is null ? Array.Empty<TextFinding>() : found;
    }

    /// <summary>The text with each finding of <paramref name="scan"/> replaced by its label; the same instance when there is none.</summary>
    public static string Redact(string text, TextScanner scan)
    {
        List<TextFinding>? found = null;
        scan(text, ref found);
        return found is null ? text : Apply(text, Redactions(found));
    }

    private static readonly ConcurrentDictionary<string, string> Labels = new(StringComparer.Ordinal);

    /// <summary><c>[REDACTED:kind]</c>, one string per kind.</summary>
    public static string RedactedLabel(string kind) => Labels.GetOrAdd(kind, static k => $"[REDACTED:{k}]");

    /// <summary>
    /// Sorts by start and unites overlapping findings: the union keeps the kind with the lowest
    /// <paramref name="priority"/> (the most specific rule), so a GitHub token inside a URL with credentials is reported
    /// as a github-token and the redaction still covers everything any rule found.
    /// </summary>
    public static void Normalize(List<TextFinding> findings, Func<string, int> priority)
    {
        if (findings.Count < 2)
        {
            return;
        }

        findings.Sort(static (a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : b.Length.CompareTo(a.Length));
        var kept = 0;
        for (var i = 0; i < findings.Count; i++)
        {
            var finding = findings[i];
            if (kept > 0 && finding.Start < findings[kept - 1].End)
            {
                var last = findings[kept - 1];
                var kind = priority(finding.Kind) < priority(last.Kind) ? finding.Kind : last.Kind;
                findings[kept - 1] = new TextFinding(last.Start, Math.Max(last.End, finding.End) - last.Start, kind);
                continue;
            }

            findings[kept++] = finding;
        }

        findings.RemoveRange(kept, findings.Count - kept);
    }

    /// <summary>
    /// Sorts by start and unites overlapping edits: the union takes the replacement of the edit that starts first, unless
    /// that one only deletes (a hidden character) and the other replaces.
    /// </summary>
    public static void Merge(List<TextEdit> edits)
    {
        if (edits.Count < 2)
        {
            return;
        }

        edits.Sort(static (a, b) => a.Start != b.Start ? a.Start.CompareTo(b.Start) : b.Length.CompareTo(a.Length));
        var kept = 0;
        for (var i = 0; i < edits.Count; i++)
        {
            var edit = edits[i];
            if (kept > 0 && edit.Start < edits[kept - 1].End)
            {
                var last = edits[kept - 1];
                var end = Math.Max(last.End, edit.End);
                var winner = last.Replacement.Length == 0 && edit.Replacement.Length > 0 ? edit : last;
                edits[kept - 1] = new TextEdit(last.Start, end - last.Start, winner.Kind, winner.Replacement);
                continue;
            }

            edits[kept++] = edit;
        }

        edits.RemoveRange(kept, edits.Count - kept);
    }

    /// <summary>
    /// The first <paramref name="length"/> characters of the text (all when negative) with each edit applied. Edits must be
    /// merged (sorted, not overlapping) and those applied must lie within that prefix.
    /// </summary>
    public static string Apply(string text, IReadOnlyList<TextEdit> edits, int length = -1)
    {
        if (length < 0)
        {
            length = text.Length;
        }

        var builder = new StringBuilder(length + 16);
        var at = 0;
        foreach (var edit in edits)
        {
            if (edit.End > length)
            {
                break;
            }

            builder.Append(text, at, edit.Start - at).Append(edit.Replacement);
            at = edit.End;
        }

        return builder.Append(text, at, length - at).ToString();
    }

    /// <summary>Findings as edits that replace each with <c>[REDACTED:kind]</c>, merged.</summary>
    public static List<TextEdit> Redactions(IReadOnlyList<TextFinding> findings)
    {
        var edits = new List<TextEdit>(findings.Count);
        foreach (var f in findings)
        {
            edits.Add(new TextEdit(f.Start, f.Length, f.Kind, RedactedLabel(f.Kind)));
        }

        Merge(edits);
        return edits;
    }
}
