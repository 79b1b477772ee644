using System.Text.RegularExpressions;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Secrets;

/// <summary>
/// Finds credentials in text: provider-specific token formats (modelled on the public gitleaks rule set, written anew
/// here), credentials in connection strings and assignments, private keys, and long random-looking tokens (Shannon
/// entropy). Every pattern is source-generated and anchored on a literal, so text without candidates costs one
/// vectorized pass per rule and allocates nothing.
/// </summary>
public static partial class SecretDetector
{
    /// <summary>Kind of a long random-looking token that no specific rule named.</summary>
    public const string HighEntropyKind = "high-entropy-token";

    /// <summary>Shortest token the entropy check looks at. Default 20 characters.</summary>
    public const int HighEntropyMinLength = 20;

    /// <summary>Longest token the entropy check looks at: longer runs are data (images, archives), not credentials. 256 characters.</summary>
    public const int HighEntropyMaxLength = 256;

    /// <summary>Every kind this detector reports.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [.. SecretRules.All.Select(r => r.Kind).Distinct(), HighEntropyKind];

    /// <summary>The credentials in <paramref name="text"/>, in order, not overlapping. Allocates nothing when there are none.</summary>
    public static IReadOnlyList<TextFinding> Find(string text) => TextEdits.Find(text, Scan);

    /// <summary>The text with each credential replaced by <c>[REDACTED:kind]</c>; the same instance when there is none.</summary>
    public static string Redact(string text) => TextEdits.Redact(text, Scan);

    /// <summary>Adds the credentials in <paramref name="text"/> to <paramref name="found"/> (created on the first), normalized.</summary>
    internal static void Scan(string text, ref List<TextFinding>? found)
    {
        var before = found?.Count ?? 0;
        foreach (var rule in SecretRules.All)
        {
            rule.Scan(text, ref found);
        }

        ScanHighEntropy(text, ref found, before);
        if (found is not null && found.Count - before > 1)
        {
            if (before == 0)
            {
                TextEdits.Normalize(found, Priority);
            }
            else
            {
                var mine = found.GetRange(before, found.Count - before);
                TextEdits.Normalize(mine, Priority);
                found.RemoveRange(before, found.Count - before);
                found.AddRange(mine);
            }
        }
    }

    private static void ScanHighEntropy(string text, ref List<TextFinding>? found, int before)
    {
        var span = text.AsSpan();
        var from = 0;
        while (TokenShape.NextRun(span, TokenShape.TokenChars, HighEntropyMinLength, ref from, out var start, out var length))
        {
            var token = span.Slice(start, length);

            // Trim padding and separators that cling to a token ("--", "==", "/path/").
            var trimmedStart = start;
            while (token.Length > 0 && token[0] is '-' or '_' or '/' or '+')
            {
                token = token[1..];
                trimmedStart++;
            }

            token = token.TrimEnd("-_/+");
            if (token.Length < HighEntropyMinLength || token.Length > HighEntropyMaxLength || Overlaps(found, before, trimmedStart, token.Length))
            {
                continue;
            }

            if (IsIntegrityOrData(span, start, token) || !TokenShape.LooksRandom(token, HighEntropyMinLength) || TokenShape.IsBase64OfProse(token))
            {
                continue;
            }

            var padding = 0;
            while (padding < 2 && start + length + padding < span.Length && span[start + length + padding] == '=' && trimmedStart + token.Length == start + length)
            {
                padding++;
            }

            (found ??= []).Add(new TextFinding(trimmedStart, token.Length + padding, HighEntropyKind));
        }
    }

    // Rules are listed most specific first; the entropy check comes last.
    private static readonly Dictionary<string, int> Priorities = SecretRules.All.Select((r, i) => (Kind: r.Kind, Rank: i))
        .DistinctBy(p => p.Kind).Append((Kind: HighEntropyKind, Rank: int.MaxValue)).ToDictionary(p => p.Kind, p => p.Rank, StringComparer.Ordinal);

    private static int Priority(string kind) => Priorities.GetValueOrDefault(kind, int.MaxValue);

    private static bool Overlaps(List<TextFinding>? found, int before, int start, int length)
    {
        if (found is null)
        {
            return false;
        }

        for (var i = before; i < found.Count; i++)
        {
            if (start < found[i].End && found[i].Start < start + length)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Subresource-integrity hashes (<c>sha512-…</c>) and data URIs (<c>;base64,…</c>) are random by design and not secret.</summary>
    private static bool IsIntegrityOrData(ReadOnlySpan<char> text, int start, ReadOnlySpan<char> token)
    {
        if (token.StartsWith("sha1-", StringComparison.Ordinal) || token.StartsWith("sha256-", StringComparison.Ordinal)
            || token.StartsWith("sha384-", StringComparison.Ordinal) || token.StartsWith("sha512-", StringComparison.Ordinal))
        {
            return true;
        }

        var before = text[Math.Max(0, start - 8)..start];
        return before.EndsWith("base64,", StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>One credential format: a source-generated pattern, the group that holds the secret, and an extra check.</summary>
internal sealed class SecretRule(string kind, Regex regex, string? group = null, Func<string, Match, Group, bool>? accept = null)
{
    public string Kind { get; } = kind;

    public void Scan(string text, ref List<TextFinding>? found)
    {
        if (group is null && accept is null)
        {
            foreach (var match in regex.EnumerateMatches(text))
            {
                (found ??= []).Add(new TextFinding(match.Index, match.Length, Kind));
            }

            return;
        }

        if (!regex.IsMatch(text))
        {
            return;
        }

        for (var match = regex.Match(text); match.Success; match = match.NextMatch())
        {
            var secret = group is null ? match : match.Groups[group];
            if (secret.Success && secret.Length > 0 && (accept is null || accept(text, match, secret)))
            {
                (found ??= []).Add(new TextFinding(secret.Index, secret.Length, Kind));
            }
        }
    }
}
