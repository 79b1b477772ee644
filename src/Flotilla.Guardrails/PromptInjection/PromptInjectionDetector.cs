using System.Buffers;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.PromptInjection;

/// <summary>
/// Scores how much a text looks like a prompt injection: instructions that try to override the agent's, fake role
/// turns, text aimed at the model or its tools, hidden characters, encoded payloads. Each signal has a weight; the score
/// is 1 − Π(1 − wᵢ) over the signals that fired, so one strong signal (an instruction override, 0.6) or two weak ones
/// (a tool instruction and a pipe-to-shell, 0.3 and 0.4) reach the default threshold of 0.5.
/// </summary>
public static partial class PromptInjectionDetector
{
    /// <summary>Score at or above which a text is an injection, unless a guardrail sets its own threshold.</summary>
    public const double DefaultThreshold = 0.5;

    /// <summary>What replaces an injected passage when the guardrail redacts.</summary>
    public const string RemovedLabel = "[removed: possible prompt injection]";

    /// <summary>Kind of a hidden character in findings (it is removed, not labelled).</summary>
    public const string HiddenCharacterKind = "hidden-character";

    private const RegexOptions Options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture;
    private const int MinEncodedRun = 24;
    private const int MaxEncodedRun = 16 * 1024;

    private static readonly (InjectionSignals Signal, double Weight, string Name)[] Table =
    [
        (InjectionSignals.InstructionOverride, 0.6, "instruction-override"),
        (InjectionSignals.PromptExtraction, 0.5, "prompt-extraction"),
        (InjectionSignals.RoleReassignment, 0.45, "role-reassignment"),
        (InjectionSignals.Jailbreak, 0.55, "jailbreak"),
        (InjectionSignals.ChatTemplateToken, 0.55, "chat-template-token"),
        (InjectionSignals.RoleMarker, 0.3, "role-marker"),
        (InjectionSignals.AddressedToModel, 0.4, "addressed-to-model"),
        (InjectionSignals.Concealment, 0.45, "concealment"),
        (InjectionSignals.ToolInstruction, 0.3, "tool-instruction"),
        (InjectionSignals.DangerousAction, 0.4, "dangerous-action"),
        (InjectionSignals.Exfiltration, 0.5, "exfiltration"),
        (InjectionSignals.SensitiveFile, 0.35, "sensitive-file"),
        (InjectionSignals.HiddenTagCharacters, 0.6, "hidden-tag-characters"),
        (InjectionSignals.ZeroWidthCharacters, 0.25, "zero-width-characters"),
        (InjectionSignals.BidiControl, 0.3, "bidi-control"),
        (InjectionSignals.EncodedPayload, 0.6, "encoded-payload"),
    ];

    private enum Extent { Sentence, Paragraph, Exact }

    // Each pattern with a gate: words of which every match contains one. A pattern whose gate words are all absent
    // cannot match, and one vectorized search says so faster than the pattern's own scan (the generator falls back to
    // a character-set scan for some of these).
    private static readonly (InjectionSignals Signal, Func<Regex> Pattern, Extent Extent, SearchValues<string>? Gate)[] Phrases =
    [
        (InjectionSignals.InstructionOverride, InstructionOverride, Extent.Sentence, Gate("ignore", "disregard", "forget", "skip", "override", "bypass", "abandon", "neglect", "discard")),
        (InjectionSignals.InstructionOverride, NewInstructions, Extent.Sentence, null),
        (InjectionSignals.InstructionOverride, OverrideCommand, Extent.Sentence, Gate("override", "instead")),
        (InjectionSignals.PromptExtraction, PromptExtraction, Extent.Sentence, Gate("prompt", "message", "instruction", "rules", "guideline", "configuration", "above")),
        (InjectionSignals.RoleReassignment, RoleReassignment, Extent.Sentence, null),
        (InjectionSignals.Jailbreak, Jailbreak, Extent.Sentence, null),
        (InjectionSignals.Jailbreak, JailbreakPersona, Extent.Sentence, null),
        (InjectionSignals.ChatTemplateToken, ChatTemplateToken, Extent.Paragraph, null),
        (InjectionSignals.RoleMarker, RoleMarker, Extent.Paragraph, null),
        (InjectionSignals.RoleMarker, RoleHeading, Extent.Paragraph, null),
        (InjectionSignals.RoleMarker, RoleTag, Extent.Paragraph, null),
        (InjectionSignals.AddressedToModel, AddressedToModel, Extent.Sentence, null),
        (InjectionSignals.Concealment, Concealment, Extent.Sentence, Gate("not", "n't", "dont", "never", "without", "keep", "user")),
        (InjectionSignals.ToolInstruction, ToolInstruction, Extent.Sentence, null),
        (InjectionSignals.DangerousAction, DangerousAction, Extent.Sentence, null),
        (InjectionSignals.Exfiltration, Exfiltration, Extent.Sentence, Gate("exfiltrat", "://", "@", "url", "address", "endpoint", "server", "webhook", "email")),
        (InjectionSignals.SensitiveFile, SensitiveFile, Extent.Sentence, Gate("~/.ssh", "id_", ".aws/", "/etc/", ".netrc", ".npmrc", ".pypirc", ".git-credentials", "credentials.json", ".kube/", ".env")),
    ];

    private static SearchValues<string> Gate(params string[] words) => SearchValues.Create(words, StringComparison.OrdinalIgnoreCase);

    private static bool Closed(string text, SearchValues<string>? gate) => gate is not null && !text.AsSpan().ContainsAny(gate);

    // Zero-width, bidi controls and the high surrogate of the tag block (U+E0000..U+E007F = DB40 DC00..DB40 DC7F).
    private static readonly SearchValues<char> HiddenChars = SearchValues.Create(
        "\u200B\u200C\u200D\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\uFEFF\uDB40");

    /// <summary>The score and signals of <paramref name="text"/>. Allocates nothing unless the text holds hidden or encoded content.</summary>
    public static InjectionAnalysis Analyze(string text) => Analyze(text, null);

    /// <summary>
    /// When the text's score reaches <paramref name="threshold"/>: the text with hidden characters removed and each
    /// offending sentence (or fake turn, or encoded run) replaced by <see cref="RemovedLabel"/>. Otherwise the text itself.
    /// </summary>
    public static string Sanitize(string text, double threshold = DefaultThreshold)
    {
        if (!Analyze(text).IsInjection(threshold))
        {
            return text;
        }

        var edits = new List<TextEdit>();
        Analyze(text, edits, threshold);
        TextEdits.Merge(edits);
        return TextEdits.Apply(text, edits);
    }

    /// <summary>The names of the signals in <paramref name="signals"/>, in weight-table order.</summary>
    public static IEnumerable<string> SignalNames(InjectionSignals signals)
    {
        foreach (var (signal, _, name) in Table)
        {
            if ((signals & signal) != 0)
            {
                yield return name;
            }
        }
    }

    /// <summary>The name of one signal, e.g. <c>instruction-override</c>.</summary>
    public static string SignalName(InjectionSignals signal)
    {
        foreach (var (s, _, name) in Table)
        {
            if (s == signal)
            {
                return name;
            }
        }

        throw new ArgumentOutOfRangeException(nameof(signal), signal, "Not a single signal.");
    }

    /// <summary>The score of a set of signals: 1 − Π(1 − wᵢ).</summary>
    public static double Score(InjectionSignals signals)
    {
        var pass = 1.0;
        foreach (var (signal, weight, _) in Table)
        {
            if ((signals & signal) != 0)
            {
                pass *= 1 - weight;
            }
        }

        return Math.Round(1 - pass, 4);
    }

    /// <summary>
    /// Analyzes the text. Phrase signals combine per paragraph (text between blank lines), so weak signals far apart in a
    /// long benign document do not add up; hidden characters and encoded payloads count for every paragraph. The score is
    /// the best paragraph's. When <paramref name="edits"/> is given, adds what to change in the paragraphs at or above
    /// <paramref name="threshold"/>: each hidden character removed, each offending passage replaced by
    /// <see cref="RemovedLabel"/> (unmerged; the caller merges).
    /// </summary>
    internal static InjectionAnalysis Analyze(string text, List<TextEdit>? edits, double threshold = DefaultThreshold)
    {
        var global = InjectionSignals.None;
        var scanned = text;
        int[]? map = null;
        if (text.AsSpan().ContainsAny(HiddenChars))
        {
            global |= FindHidden(text, null, out var hidden);
            if (hidden > 0)
            {
                scanned = Strip(text, hidden, out map);
            }
        }

        global |= FindEncoded(scanned, null, map, text);

        Span<Segment> segments = stackalloc Segment[MaxSegments];
        var count = FindPhrases(scanned, segments);
        var best = new InjectionAnalysis(Score(global), global);
        for (var i = 0; i < count; i++)
        {
            var signals = segments[i].Signals | global;
            var score = Score(signals);
            if (score > best.Score)
            {
                best = new InjectionAnalysis(score, signals);
            }
        }

        if (edits is null || best.Signals == InjectionSignals.None || best.Score < threshold)
        {
            return best;
        }

        if (global != InjectionSignals.None)
        {
            FindHidden(text, edits, out _);
            FindEncoded(scanned, edits, map, text);
        }

        foreach (var (signal, pattern, extent, gate) in Phrases)
        {
            if (Closed(scanned, gate))
            {
                continue;
            }

            foreach (var m in pattern().EnumerateMatches(scanned))
            {
                var segment = Lookup(segments[..count], SegmentStart(scanned, m.Index));
                if (Score(segment | global) < threshold)
                {
                    continue;
                }

                var (start, end) = Expand(scanned, m.Index, m.Index + m.Length, extent);
                (start, end) = ToOriginal(map, start, end);
                edits.Add(new TextEdit(start, end - start, SignalName(signal), RemovedLabel));
            }
        }

        return best;
    }

    private const int MaxSegments = 32;

    /// <summary>The phrase signals of one paragraph, keyed by where it starts.</summary>
    private struct Segment
    {
        public int Start;
        public InjectionSignals Signals;
    }

    /// <summary>Records each phrase signal against its paragraph; returns how many paragraphs have one. Allocates nothing.</summary>
    private static int FindPhrases(string text, Span<Segment> segments)
    {
        var count = 0;
        foreach (var (signal, pattern, _, gate) in Phrases)
        {
            if (Closed(text, gate))
            {
                continue;
            }

            foreach (var m in pattern().EnumerateMatches(text))
            {
                var start = SegmentStart(text, m.Index);
                var i = 0;
                while (i < count && segments[i].Start != start)
                {
                    i++;
                }

                if (i == count)
                {
                    // Past the last slot, further paragraphs share it: more combining, never less detection.
                    if (count < segments.Length)
                    {
                        segments[count++] = new Segment { Start = start };
                    }
                    else
                    {
                        i = count - 1;
                    }
                }

                segments[i].Signals |= signal;
            }
        }

        return count;
    }

    /// <summary>All phrase signals of a text, paragraphs ignored (for decoded payloads, which are short).</summary>
    private static InjectionSignals PhraseSignals(string text)
    {
        var signals = InjectionSignals.None;
        foreach (var (signal, pattern, _, gate) in Phrases)
        {
            if (!Closed(text, gate) && pattern().IsMatch(text))
            {
                signals |= signal;
            }
        }

        return signals;
    }

    // A paragraph starts after a blank line (LF LF or CRLF CRLF).
    private static int SegmentStart(string text, int index)
    {
        var before = text.AsSpan(0, index);
        var lf = before.LastIndexOf("\n\n", StringComparison.Ordinal);
        var crlf = before.LastIndexOf("\n\r\n", StringComparison.Ordinal);
        return Math.Max(lf < 0 ? 0 : lf + 2, crlf < 0 ? 0 : crlf + 3);
    }

    private static int ParagraphEnd(ReadOnlySpan<char> after)
    {
        var lf = after.IndexOf("\n\n", StringComparison.Ordinal);
        var crlf = after.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return lf < 0 ? crlf : crlf < 0 ? lf : Math.Min(lf, crlf);
    }

    private static InjectionSignals Lookup(ReadOnlySpan<Segment> segments, int start)
    {
        foreach (var segment in segments)
        {
            if (segment.Start == start)
            {
                return segment.Signals;
            }
        }

        return segments.IsEmpty ? InjectionSignals.None : segments[^1].Signals;
    }

    // ---- hidden characters ----

    private static InjectionSignals FindHidden(string text, List<TextEdit>? edits, out int hidden)
    {
        var signals = InjectionSignals.None;
        hidden = 0;
        var span = text.AsSpan();
        var i = span.IndexOfAny(HiddenChars);
        while (i >= 0 && i < span.Length)
        {
            var c = span[i];
            var length = 1;
            var signal = InjectionSignals.None;
            if (c == '\uDB40')
            {
                if (i + 1 < span.Length && span[i + 1] is >= '\uDC00' and <= '\uDC7F')
                {
                    length = 2;
                    if (!IsInEmojiTagSequence(span, i))
                    {
                        signal = InjectionSignals.HiddenTagCharacters;
                    }
                }
            }
            else if (c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069')
            {
                signal = InjectionSignals.BidiControl;
            }
            else if (c is '\u200C' or '\u200D')
            {
                // Joiners belong in emoji sequences and in scripts that need them; inside ASCII words they hide text.
                if (IsAsciiLetterOrDigitAt(span, i - 1) || IsAsciiLetterOrDigitAt(span, i + 1))
                {
                    signal = InjectionSignals.ZeroWidthCharacters;
                }
            }
            else if (!(c == '\uFEFF' && i == 0))
            {
                signal = InjectionSignals.ZeroWidthCharacters;
            }

            if (signal != InjectionSignals.None)
            {
                signals |= signal;
                hidden++;
                edits?.Add(new TextEdit(i, length, HiddenCharacterKind, ""));
            }

            var next = span[(i + length)..].IndexOfAny(HiddenChars);
            i = next < 0 ? -1 : i + length + next;
        }

        return signals;
    }

    private static bool IsAsciiLetterOrDigitAt(ReadOnlySpan<char> s, int i) => i >= 0 && i < s.Length && char.IsAsciiLetterOrDigit(s[i]);

    // Subdivision flags (England, Scotland, Wales) are U+1F3F4 followed by tag characters ending in U+E007F.
    private static bool IsInEmojiTagSequence(ReadOnlySpan<char> s, int i)
    {
        var start = i;
        while (start >= 2 && s[start - 2] == '\uDB40' && s[start - 1] is >= '\uDC00' and <= '\uDC7F')
        {
            start -= 2;
        }

        if (start < 2 || s[start - 2] != '\uD83C' || s[start - 1] != '\uDFF4')
        {
            return false;
        }

        var end = i;
        while (end + 1 < s.Length && s[end] == '\uDB40' && s[end + 1] is >= '\uDC00' and <= '\uDC7F')
        {
            if (s[end + 1] == '\uDC7F')
            {
                return end - start <= 14;
            }

            end += 2;
        }

        return false;
    }

    /// <summary>The text without the hidden characters that counted, and for each kept character (and the end) its index in the original.</summary>
    private static string Strip(string text, int hidden, out int[] map)
    {
        var edits = new List<TextEdit>(hidden);
        FindHidden(text, edits, out _);
        var builder = new StringBuilder(text.Length);
        map = new int[text.Length + 1];
        var at = 0;
        foreach (var edit in edits)
        {
            for (var i = at; i < edit.Start; i++)
            {
                map[builder.Length] = i;
                builder.Append(text[i]);
            }

            at = edit.End;
        }

        for (var i = at; i < text.Length; i++)
        {
            map[builder.Length] = i;
            builder.Append(text[i]);
        }

        map[builder.Length] = text.Length;
        return builder.ToString();
    }

    private static (int Start, int End) ToOriginal(int[]? map, int start, int end) =>
        map is null ? (start, end) : (map[start], end == 0 ? 0 : map[end - 1] + 1);

    // ---- encoded payloads ----

    private static InjectionSignals FindEncoded(string scanned, List<TextEdit>? edits, int[]? map, string original)
    {
        var signals = InjectionSignals.None;
        var span = scanned.AsSpan();
        var from = 0;
        while (TokenShape.NextRun(span, TokenShape.TokenChars, MinEncodedRun, ref from, out var start, out var length))
        {
            if (length > MaxEncodedRun)
            {
                continue;
            }

            var decoded = TokenShape.IsHexLike(span.Slice(start, length)) ? DecodeHex(span.Slice(start, length)) : DecodeBase64(span.Slice(start, length));
            var end = start + length;
            while (end < span.Length && end - (start + length) < 2 && span[end] == '=')
            {
                end++;
            }

            signals |= Payload(decoded, edits, map, original, start, end);
        }

        if (span.Contains('%') && CountPercentEscapes(span) >= 6)
        {
            var (first, last) = EscapedRange(span, '%');
            signals |= Payload(Uri.UnescapeDataString(scanned), edits, map, original, first, last);
        }

        if (span.Contains("&#", StringComparison.Ordinal) && Count(span, "&#") >= 6)
        {
            var (first, last) = EscapedRange(span, '&');
            signals |= Payload(WebUtility.HtmlDecode(scanned), edits, map, original, first, last);
        }

        return signals;
    }

    private static InjectionSignals Payload(string? decoded, List<TextEdit>? edits, int[]? map, string original, int start, int end)
    {
        if (decoded is null)
        {
            return InjectionSignals.None;
        }

        var inner = PhraseSignals(decoded);
        if (Score(inner) < 0.3)
        {
            return InjectionSignals.None;
        }

        if (edits is not null)
        {
            (start, end) = ToOriginal(map, start, end);
            edits.Add(new TextEdit(start, end - start, SignalName(InjectionSignals.EncodedPayload), RemovedLabel));
        }

        return inner | InjectionSignals.EncodedPayload;
    }

    private static string? DecodeBase64(ReadOnlySpan<char> run)
    {
        run = run.TrimEnd('=');
        if (run.Length % 4 == 1)
        {
            return null;
        }

        var padded = ArrayPool<char>.Shared.Rent(run.Length + 3);
        var bytes = ArrayPool<byte>.Shared.Rent((run.Length * 3 / 4) + 3);
        try
        {
            var n = 0;
            foreach (var c in run)
            {
                padded[n++] = c switch { '-' => '+', '_' => '/', _ => c };
            }

            while (n % 4 != 0)
            {
                padded[n++] = '=';
            }

            return Convert.TryFromBase64Chars(padded.AsSpan(0, n), bytes, out var written) ? PrintableText(bytes.AsSpan(0, written)) : null;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(padded);
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private static string? DecodeHex(ReadOnlySpan<char> run)
    {
        if (run.Length % 2 != 0 || run.Contains('-'))
        {
            return null;
        }

        var bytes = ArrayPool<byte>.Shared.Rent(run.Length / 2);
        try
        {
            return Convert.FromHexString(run, bytes, out _, out var written) == OperationStatus.Done ? PrintableText(bytes.AsSpan(0, written)) : null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>The bytes as text when at least 90% of them are printable ASCII or whitespace (decoded prose, not binary).</summary>
    private static string? PrintableText(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 12)
        {
            return null;
        }

        var printable = 0;
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and < 0x7F or (byte)'\n' or (byte)'\r' or (byte)'\t')
            {
                printable++;
            }
        }

        return printable * 10 >= bytes.Length * 9 ? Encoding.UTF8.GetString(bytes) : null;
    }

    private static int CountPercentEscapes(ReadOnlySpan<char> s)
    {
        var count = 0;
        for (var i = s.IndexOf('%'); i >= 0 && i + 2 < s.Length; i = s[(i + 1)..].IndexOf('%') is var next and >= 0 ? i + 1 + next : -1)
        {
            if (char.IsAsciiHexDigit(s[i + 1]) && char.IsAsciiHexDigit(s[i + 2]))
            {
                count++;
            }
        }

        return count;
    }

    private static int Count(ReadOnlySpan<char> s, string value)
    {
        var count = 0;
        for (var i = s.IndexOf(value, StringComparison.Ordinal); i >= 0; i = s[(i + 1)..].IndexOf(value, StringComparison.Ordinal) is var next and >= 0 ? i + 1 + next : -1)
        {
            count++;
        }

        return count;
    }

    private static (int First, int Last) EscapedRange(ReadOnlySpan<char> s, char marker)
    {
        var first = s.IndexOf(marker);
        var last = s.LastIndexOf(marker);
        var end = last;
        while (end < s.Length && !char.IsWhiteSpace(s[end]))
        {
            end++;
        }

        return (first, end);
    }

    // ---- extents ----

    private const int MaxSentence = 400;
    private const int MaxParagraph = 2000;

    private static (int Start, int End) Expand(string text, int start, int end, Extent extent)
    {
        switch (extent)
        {
            case Extent.Exact:
                return (start, end);
            case Extent.Paragraph:
            {
                var lineStart = text.LastIndexOf('\n', Math.Max(0, start - 1)) + 1;
                if (start == 0)
                {
                    lineStart = 0;
                }

                var limit = Math.Min(text.Length, end + MaxParagraph);
                var blank = ParagraphEnd(text.AsSpan(end, limit - end));
                return (Math.Max(lineStart, start - MaxSentence), blank < 0 ? limit : end + blank);
            }

            default:
            {
                var left = start;
                while (left > 0 && start - left < MaxSentence && !IsSentenceBreakBefore(text, left))
                {
                    left--;
                }

                var right = end;
                while (right < text.Length && right - end < MaxSentence && !IsSentenceBreakAt(text, right))
                {
                    right++;
                }

                if (right < text.Length && text[right] is '.' or '!' or '?')
                {
                    right++;
                }

                return (left, right);
            }
        }
    }

    // A sentence starts after a newline, or after . ! ? followed by white space.
    private static bool IsSentenceBreakBefore(string text, int i) =>
        text[i - 1] == '\n' || (char.IsWhiteSpace(text[i - 1]) && i >= 2 && text[i - 2] is '.' or '!' or '?');

    private static bool IsSentenceBreakAt(string text, int i) =>
        text[i] == '\n' || (text[i] is '.' or '!' or '?' && (i + 1 == text.Length || char.IsWhiteSpace(text[i + 1])));
}
