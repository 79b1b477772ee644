namespace Flotilla.Guardrails.Text;

/// <summary>
/// How much of a streamed window must stay pending for detectors whose findings are single tokens or short runs of
/// "suspicious" words (secrets, personal data): the last word while it may still grow, and before it the run of words
/// that could be the start of a finding spread over several words (<c>password = …</c>, <c>Authorization: Basic …</c>,
/// <c>-----BEGIN RSA PRIVATE KEY-----</c>, <c>4111 1111 …</c>, <c>GB82 WEST 1234 …</c>, <c>+1 (555) …</c>). Ordinary
/// words end the run, because none of those findings can continue through one; so prose leaves a word behind the model
/// instead of a fixed number of characters behind it.
/// </summary>
internal static class StreamTail
{
    /// <summary>
    /// Letters-only words that start or join a credential that spans words: key names (<c>password</c>, <c>api_key</c>'s
    /// parts, <c>AccountKey</c>), auth schemes (<c>Bearer</c>, <c>Basic</c>) and their relatives. Matched anywhere in the
    /// word, case-insensitively; a false alarm only holds a few words a little longer.
    /// </summary>
    private static readonly string[] KeyStems =
        ["pass", "pwd", "secret", "token", "key", "auth", "bearer", "basic", "aws", "private", "access", "sign", "encrypt", "api", "credential"];

    /// <summary>Characters at the end of <paramref name="window"/> to hold back (at most <paramref name="cap"/>); 0 releases it all.</summary>
    public static int Hold(string window, int cap)
    {
        var end = window.Length;
        var holdFrom = end;
        var at = end;
        while (at > 0)
        {
            var wordEnd = at;
            while (wordEnd > 0 && char.IsWhiteSpace(window[wordEnd - 1]))
            {
                wordEnd--;
            }

            if (wordEnd == 0)
            {
                break;
            }

            var wordStart = wordEnd;
            while (wordStart > 0 && !char.IsWhiteSpace(window[wordStart - 1]))
            {
                wordStart--;
            }

            // The last word is unfinished until whitespace follows it; an earlier one stays only if it is suspicious.
            if (wordEnd != end && !Suspicious(window.AsSpan(wordStart, wordEnd - wordStart)))
            {
                break;
            }

            holdFrom = wordStart;
            if (end - holdFrom >= cap)
            {
                return cap;
            }

            at = wordStart;
        }

        return end - holdFrom;
    }

    /// <summary>
    /// A word that may be part of a finding spread over several words: it holds anything but letters (digits, separators,
    /// dashes, brackets, <c>+</c>), is upper case (<c>RSA</c>, <c>WEST</c>, <c>AB</c>), or carries a key stem. Sentence
    /// punctuation around it does not count.
    /// </summary>
    internal static bool Suspicious(ReadOnlySpan<char> word)
    {
        word = word.TrimStart("\"'([{").TrimEnd(".,;!?\"')]}");
        if (word.IsEmpty)
        {
            return false;
        }

        var upper = true;
        foreach (var c in word)
        {
            if (!char.IsLetter(c))
            {
                return true;
            }

            upper &= char.IsUpper(c);
        }

        if (upper)
        {
            return true;
        }

        foreach (var stem in KeyStems)
        {
            if (word.Contains(stem, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
