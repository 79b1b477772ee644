namespace Flotilla.Fleet;

/// <summary>
/// The fleet file's wildcard patterns, for tool names (<c>delete_*</c>) and argument values (<c>docs/release-notes/*</c>):
/// <c>*</c> matches any run of characters but <c>/</c>, <c>**</c> any run at all, <c>?</c> one character but <c>/</c>.
/// Everything else matches itself, case-sensitively.
/// </summary>
public static class Glob
{
    public static bool HasWildcard(string pattern) => pattern.AsSpan().IndexOfAny('*', '?') >= 0;

    public static bool IsMatch(string pattern, string text) => Match(pattern.AsSpan(), text.AsSpan());

    public static bool IsMatchAny(IReadOnlyList<string> patterns, string text)
    {
        for (var i = 0; i < patterns.Count; i++)
        {
            if (IsMatch(patterns[i], text))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Match(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text)
    {
        while (pattern.Length > 0)
        {
            var c = pattern[0];
            if (c == '*')
            {
                var any = pattern.Length > 1 && pattern[1] == '*';
                var rest = pattern[(any ? 2 : 1)..];
                for (var i = 0; i <= text.Length; i++)
                {
                    if (Match(rest, text[i..]))
                    {
                        return true;
                    }

                    if (i < text.Length && !any && text[i] == '/')
                    {
                        return false;
                    }
                }

                return false;
            }

            if (text.Length == 0 || (c == '?' ? text[0] == '/' : text[0] != c))
            {
                return false;
            }

            pattern = pattern[1..];
            text = text[1..];
        }

        return text.Length == 0;
    }
}
