using System.Buffers;

namespace Flotilla.Guardrails.Text;

/// <summary>Cheap facts about short tokens: runs of a character class, Shannon entropy, whether a token looks random or like a placeholder.</summary>
internal static class TokenShape
{
    /// <summary>
    /// Characters of credential-like tokens: the base64, base64url and hex alphabets without the padding <c>=</c>, which
    /// would join a key name to its value (<c>TOKEN=value</c>).
    /// </summary>
    public static readonly SearchValues<char> TokenChars = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-");

    /// <summary>
    /// Finds the next maximal run of at least <paramref name="minLength"/> characters of <paramref name="set"/> at or after
    /// <paramref name="from"/>, which must not be inside a run. Probes every <paramref name="minLength"/>-th character first,
    /// so ordinary prose (short words) is crossed in about n / minLength steps.
    /// </summary>
    public static bool NextRun(ReadOnlySpan<char> text, SearchValues<char> set, int minLength, ref int from, out int start, out int length)
    {
        var i = from;
        while (i + minLength <= text.Length)
        {
            var probe = i + minLength - 1;
            if (!set.Contains(text[probe]))
            {
                i = probe + 1;
                continue;
            }

            var j = probe - 1;
            while (j >= i && set.Contains(text[j]))
            {
                j--;
            }

            if (j >= i)
            {
                i = j + 1;
                continue;
            }

            var rest = text[(probe + 1)..].IndexOfAnyExcept(set);
            var end = rest < 0 ? text.Length : probe + 1 + rest;
            start = i;
            length = end - i;
            from = end;
            return true;
        }

        start = length = 0;
        from = text.Length;
        return false;
    }

    /// <summary>Shannon entropy in bits per character of an ASCII token (other characters count as one symbol).</summary>
    public static double Entropy(ReadOnlySpan<char> token)
    {
        if (token.IsEmpty)
        {
            return 0;
        }

        Span<int> counts = stackalloc int[128];
        counts.Clear();
        foreach (var c in token)
        {
            counts[c < 128 ? c : 0]++;
        }

        double entropy = 0;
        double n = token.Length;
        foreach (var count in counts)
        {
            if (count > 0)
            {
                var p = count / n;
                entropy -= p * Math.Log2(p);
            }
        }

        return entropy;
    }

    /// <summary>
    /// Share of the token's characters that sit in "words": runs of three or more lower-case letters, with an initial
    /// capital counted in. High for identifiers and paths (<c>ThisIsAName</c>, <c>my-app-secret</c>), low for random strings.
    /// </summary>
    public static double Wordiness(ReadOnlySpan<char> token)
    {
        var inWords = 0;
        var run = 0;
        for (var i = 0; i <= token.Length; i++)
        {
            if (i < token.Length && char.IsAsciiLetterLower(token[i]))
            {
                run++;
                continue;
            }

            if (run >= 3)
            {
                var capital = i - run - 1 >= 0 && char.IsAsciiLetterUpper(token[i - run - 1]) ? 1 : 0;
                inWords += run + capital;
            }

            run = 0;
        }

        return token.IsEmpty ? 0 : (double)inWords / token.Length;
    }

    /// <summary>Which of upper-case letters, lower-case letters and digits the token has.</summary>
    public static (bool Upper, bool Lower, bool Digit) Classes(ReadOnlySpan<char> token) =>
        (token.ContainsAnyInRange('A', 'Z'), token.ContainsAnyInRange('a', 'z'), token.ContainsAnyInRange('0', '9'));

    /// <summary>Whether the token is only hex digits (and dashes): git SHAs, hashes, UUIDs.</summary>
    public static bool IsHexLike(ReadOnlySpan<char> token) => !token.ContainsAnyExcept(HexAndDash);

    private static readonly SearchValues<char> HexAndDash = SearchValues.Create("0123456789abcdefABCDEF-");

    /// <summary>
    /// Whether a random-looking credential token of this shape: long enough, upper, lower and digits, high entropy for its
    /// length, not made of words.
    /// </summary>
    public static bool LooksRandom(ReadOnlySpan<char> token, int minLength)
    {
        if (token.Length < minLength || IsHexLike(token))
        {
            return false;
        }

        var (upper, lower, digit) = Classes(token);
        if (!(upper && lower && digit))
        {
            return false;
        }

        return Entropy(token) >= EntropyThreshold(token.Length) && Wordiness(token) < 0.5;
    }

    /// <summary>Entropy a random base62/base64 token of this length reaches with margin: 0.85 × log2(length), at most 4.5 bits.</summary>
    public static double EntropyThreshold(int length) => Math.Min(4.5, 0.85 * Math.Log2(length));

    /// <summary>
    /// Whether a base64 token (at most 256 characters) decodes to prose: printable ASCII with spaces. Encoded sentences
    /// are random-looking but not secret; encoded credentials decode to random bytes or to <c>user:password</c>.
    /// </summary>
    public static bool IsBase64OfProse(ReadOnlySpan<char> token)
    {
        token = token.TrimEnd('=');
        if (token.Length is < 16 or > 256 || token.Length % 4 == 1)
        {
            return false;
        }

        Span<char> padded = stackalloc char[260];
        var n = 0;
        foreach (var c in token)
        {
            padded[n++] = c switch { '-' => '+', '_' => '/', _ => c };
        }

        while (n % 4 != 0)
        {
            padded[n++] = '=';
        }

        Span<byte> bytes = stackalloc byte[195];
        if (!Convert.TryFromBase64Chars(padded[..n], bytes, out var written))
        {
            return false;
        }

        var printable = 0;
        var spaces = 0;
        foreach (var b in bytes[..written])
        {
            if (b is >= 0x20 and < 0x7F or (byte)'\n' or (byte)'\t')
            {
                printable++;
                spaces += b == ' ' ? 1 : 0;
            }
        }

        return spaces > 0 && printable * 10 >= written * 9;
    }

    private static readonly SearchValues<string> PlaceholderWords = SearchValues.Create(
        ["your_", "your-", "yourkey", "your_key", "<", "${", "{{", "process.env", "os.environ", "getenv", "environment.", "redacted", "placeholder", "replace_me", "replace-me", "changeit_", "xxxxxx", "******", "......"],
        StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether a credential value is a template, a reference or a mask rather than a credential.</summary>
    public static bool IsPlaceholder(ReadOnlySpan<char> value)
    {
        if (value.IsEmpty)
        {
            return true;
        }

        if (value[0] is '$' or '<' or '{' or '%' or '[' or '(' or '@' or '*')
        {
            return true;
        }

        if (!value.ContainsAnyExcept(value[0]))
        {
            return true;
        }

        return value.ContainsAny(PlaceholderWords);
    }
}
