using System.Text;

namespace Flotilla.Fleet;

/// <summary>
/// Text from outside (a caller's request, a fleet file) that will be stored, logged or shown to an operator: control characters that a terminal would
/// act on (C0, DEL, C1 — ESC sequences, OSC titles, carriage returns) and bidirectional overrides that reorder what is shown
/// are replaced with U+FFFD, and long text is cut with a marker saying how long it was.
/// </summary>
public static class DisplayText
{
    public const char Replacement = '\uFFFD';

    /// <summary>True for characters that must not reach a terminal as they are.</summary>
    public static bool IsUnsafe(char c) =>
        c < ' ' || c is >= '\u007F' and <= '\u009F' || c is >= '\u202A' and <= '\u202E' || c is >= '\u2066' and <= '\u2069';

    public static bool HasUnsafe(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (IsUnsafe(c))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// <paramref name="text"/> made safe to show: unsafe characters replaced, and cut to <paramref name="max"/> characters plus
    /// a marker when longer. Returns the same instance when nothing needs changing.
    /// </summary>
    public static string Safe(string text, int max = int.MaxValue)
    {
        var cut = text.Length > max;
        if (!cut && !HasUnsafe(text))
        {
            return text;
        }

        var kept = text.AsSpan(0, cut ? max : text.Length);
        var builder = new StringBuilder(kept.Length + 32);
        foreach (var c in kept)
        {
            builder.Append(IsUnsafe(c) ? Replacement : c);
        }

        if (cut)
        {
            builder.Append($"…[{text.Length} chars, truncated]");
        }

        return builder.ToString();
    }

    public static string? SafeOrNull(string? text, int max = int.MaxValue) => text is null ? null : Safe(text, max);
}
