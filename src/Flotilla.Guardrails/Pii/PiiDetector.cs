using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Pii;

/// <summary>
/// Finds personal data: e-mail addresses, phone numbers, payment card numbers (Luhn-valid, known issuer prefix), IBANs
/// (mod-97 valid, right length for the country), US social security numbers (assigned ranges only), UK national
/// insurance numbers, and IPv4/IPv6 host addresses. Numbers carry checksums where the format has one, so dates,
/// versions, ids and prices pass.
/// </summary>
public static partial class PiiDetector
{
    public const string Email = "email";
    public const string Phone = "phone-number";
    public const string CreditCard = "credit-card";
    public const string Iban = "iban";
    public const string UsSsn = "us-ssn";
    public const string UkNino = "uk-nino";
    public const string IpAddress = "ip-address";

    /// <summary>Every kind this detector reports.</summary>
    public static IReadOnlyList<string> Kinds { get; } = [Email, Phone, CreditCard, Iban, UsSsn, UkNino, IpAddress];

    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture;

    /// <summary>The personal data in <paramref name="text"/>, in order, not overlapping. Allocates nothing when there is none.</summary>
    public static IReadOnlyList<TextFinding> Find(string text) => TextEdits.Find(text, Scan);

    /// <summary>The text with each finding replaced by <c>[REDACTED:kind]</c>; the same instance when there is none.</summary>
    public static string Redact(string text) => TextEdits.Redact(text, Scan);

    internal static void Scan(string text, ref List<TextFinding>? found)
    {
        var before = found?.Count ?? 0;
        var span = text.AsSpan();
        if (span.Contains('@'))
        {
            ScanEmails(span, ref found);
        }

        var firstDigit = span.IndexOfAnyInRange('0', '9');
        if (firstDigit >= 0)
        {
            ScanNumbers(span, firstDigit, ref found);
            foreach (var m in IbanCandidate().EnumerateMatches(span))
            {
                if (IsIban(span.Slice(m.Index, m.Length)))
                {
                    Add(ref found, m.Index, m.Length, Iban);
                }
            }

            foreach (var m in NinoPattern().EnumerateMatches(span))
            {
                Add(ref found, m.Index, m.Length, UkNino);
            }
        }

        if (span.Contains(':'))
        {
            ScanIpv6(span, ref found);
        }

        if (found is not null && found.Count - before > 1)
        {
            var mine = found.GetRange(before, found.Count - before);
            TextEdits.Normalize(mine, Priority);
            found.RemoveRange(before, found.Count - before);
            found.AddRange(mine);
        }
    }

    private static readonly SearchValues<char> NumberSeparators = SearchValues.Create(" .-()");

    /// <summary>
    /// One pass over the numbers of the text: each run of digits joined by one or two separators (<c>415-555-2671</c>,
    /// <c>4111 1111 1111 1111</c>, <c>(415) 555-2671</c>, <c>203.0.113.42</c>) is checked against only the formats its
    /// digit count allows, so dates, versions and prices cost a few comparisons each.
    /// </summary>
    private static void ScanNumbers(ReadOnlySpan<char> span, int i, ref List<TextFinding>? found)
    {
        while (i >= 0)
        {
            var end = i;
            var digits = 0;
            var dashes = 0;
            var dots = 0;
            while (end < span.Length)
            {
                if (char.IsAsciiDigit(span[end]))
                {
                    digits++;
                    end++;
                    continue;
                }

                var k = end;
                while (k < span.Length && k - end < 2 && NumberSeparators.Contains(span[k]))
                {
                    k++;
                }

                if (k == end || k == span.Length || !char.IsAsciiDigit(span[k]))
                {
                    break;
                }

                dashes += span[end..k].Count('-');
                dots += span[end..k].Count('.');
                end = k;
            }

            var start = i > 0 && span[i - 1] is '+' or '(' ? i - 1 : i;
            if (digits >= 4)
            {
                CheckNumber(span, start, end, digits, dashes, dots, ref found);
            }

            var next = span[end..].IndexOfAnyInRange('0', '9');
            i = next < 0 ? -1 : end + next;
        }
    }

    private static void CheckNumber(ReadOnlySpan<char> span, int start, int end, int digits, int dashes, int dots, ref List<TextFinding>? found)
    {
        // The patterns look one or two characters past the run for their boundaries.
        var window = span[..Math.Min(span.Length, end + 2)];
        if (digits is >= 13 and <= 19)
        {
            Match(CardCandidate(), window, start, end, CreditCard, IsCardNumber, ref found);
        }

        if (digits == 9 && dashes == 2)
        {
            Match(SsnPattern(), window, start, end, UsSsn, IsSsn, ref found);
        }

        if (dots >= 3 && digits <= 12)
        {
            Match(Ipv4Pattern(), window, start, end, IpAddress, IsIpv4Host, ref found);
        }

        if (digits is >= 8 and <= 15 && span[start] == '+')
        {
            Match(InternationalPhone(), window, start, end, Phone, IsInternationalPhone, ref found);
        }

        if (digits == 10)
        {
            Match(NanpPhone(), window, start, end, Phone, IsNanpPhone, ref found);
        }

        if (digits is 10 or 11 && span[start] == '0')
        {
            Match(EuropeanPhone(), window, start, end, Phone, static _ => true, ref found);
        }
    }

    private delegate bool Check(ReadOnlySpan<char> candidate);

    private static void Match(Regex regex, ReadOnlySpan<char> window, int start, int end, string kind, Check check, ref List<TextFinding>? found)
    {
        foreach (var m in regex.EnumerateMatches(window, start))
        {
            if (m.Index >= end)
            {
                break;
            }

            if (check(window.Slice(m.Index, m.Length)))
            {
                Add(ref found, m.Index, m.Length, kind);
            }
        }
    }

    private static bool IsInternationalPhone(ReadOnlySpan<char> candidate)
    {
        var digits = CountDigits(candidate);
        var separated = candidate.Length > digits + 1;
        return digits is >= 8 and <= 15 && (separated || digits >= 10);
    }

    private static readonly SearchValues<char> EmailLocalChars = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-");

    // Found from each '@': the domain by pattern, the local part by walking back from it (at most 64 characters).
    private static void ScanEmails(ReadOnlySpan<char> span, ref List<TextFinding>? found)
    {
        foreach (var m in EmailDomain().EnumerateMatches(span))
        {
            var start = m.Index;
            while (start > 0 && m.Index - start < 64 && EmailLocalChars.Contains(span[start - 1]))
            {
                start--;
            }

            while (start < m.Index && !char.IsAsciiLetterOrDigit(span[start]))
            {
                start++;
            }

            if (start == m.Index)
            {
                continue;
            }

            if (IsEmail(span, start, m.Index + m.Length - start))
            {
                Add(ref found, start, m.Index + m.Length - start, Email);
            }
        }
    }

    private static readonly SearchValues<char> Ipv6Chars = SearchValues.Create("0123456789abcdefABCDEF:.");

    // Found from each ':': the run of hex digits, colons and dots around it.
    private static void ScanIpv6(ReadOnlySpan<char> span, ref List<TextFinding>? found)
    {
        var from = 0;
        while (from < span.Length)
        {
            var colon = span[from..].IndexOf(':');
            if (colon < 0)
            {
                return;
            }

            colon += from;
            var start = colon;
            while (start > 0 && Ipv6Chars.Contains(span[start - 1]))
            {
                start--;
            }

            var rest = span[colon..].IndexOfAnyExcept(Ipv6Chars);
            var end = rest < 0 ? span.Length : colon + rest;
            from = end + 1;
            while (start < end && span[start] == '.')
            {
                start++;
            }

            while (end > start && span[end - 1] == '.')
            {
                end--;
            }

            // A token of its own: not the tail of a word (std::vector) nor followed by one.
            var wordBefore = start > 0 && (char.IsAsciiLetterOrDigit(span[start - 1]) || span[start - 1] == '_');
            var wordAfter = end < span.Length && (char.IsAsciiLetterOrDigit(span[end]) || span[end] == '_');
            if (end - start is >= 3 and <= 45 && !wordBefore && !wordAfter && IsIpv6Host(span[start..end]))
            {
                Add(ref found, start, end - start, IpAddress);
            }
        }
    }

    // Checksummed formats are surest; phone numbers the loosest.
    private static int Priority(string kind) => kind switch
    {
        CreditCard => 0,
        Iban => 1,
        UsSsn => 2,
        UkNino => 3,
        Email => 4,
        IpAddress => 5,
        _ => 6,
    };

    private static void Add(ref List<TextFinding>? found, int start, int length, string kind) =>
        (found ??= []).Add(new TextFinding(start, length, kind));

    private static int CountDigits(ReadOnlySpan<char> s)
    {
        var n = 0;
        foreach (var c in s)
        {
            if (char.IsAsciiDigit(c))
            {
                n++;
            }
        }

        return n;
    }

    // ---- e-mail ----

    [GeneratedRegex(@"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}\b", Options)]
    private static partial Regex EmailDomain();

    private static readonly string[] FileExtensions =
        ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "js", "mjs", "ts", "tsx", "jsx", "css", "scss", "json", "yaml", "yml", "md", "txt", "cs", "py", "go", "rs", "java", "kt", "rb", "php", "html", "xml", "map", "lock", "toml", "sh", "exe", "dll", "so", "zip", "gz", "tar", "pdf"];

    // Not an address: git@host:org/repo (an SSH remote), icon@2x.png (an asset), name@version.json.
    private static bool IsEmail(ReadOnlySpan<char> text, int start, int length)
    {
        var end = start + length;
        if (end < text.Length && text[end] == ':')
        {
            return false;
        }

        var match = text.Slice(start, length);
        var tld = match[(match.LastIndexOf('.') + 1)..];
        foreach (var extension in FileExtensions)
        {
            if (tld.Equals(extension, StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        return true;
    }

    // ---- payment cards ----

    [GeneratedRegex(@"(?<![\d.,/:-])\d(?:[ -]?\d){12,18}(?![\d/:-]|[.,]\d)", Options)]
    private static partial Regex CardCandidate();

    internal static bool IsCardNumber(ReadOnlySpan<char> candidate)
    {
        Span<byte> digits = stackalloc byte[19];
        var n = 0;
        char separator = '\0';
        Span<int> groups = stackalloc int[19];
        var groupCount = 0;
        var groupLength = 0;
        foreach (var c in candidate)
        {
            if (char.IsAsciiDigit(c))
            {
                if (n == 19)
                {
                    return false;
                }

                digits[n++] = (byte)(c - '0');
                groupLength++;
                continue;
            }

            if (separator != '\0' && c != separator)
            {
                return false;
            }

            separator = c;
            groups[groupCount++] = groupLength;
            groupLength = 0;
        }

        groups[groupCount++] = groupLength;
        if (n < 13 || !HasCardGrouping(groups[..groupCount]) || !HasIssuerPrefix(digits[..n]))
        {
            return false;
        }

        return Luhn(digits[..n]);
    }

    private static bool HasCardGrouping(ReadOnlySpan<int> groups)
    {
        if (groups.Length == 1)
        {
            return true;
        }

        // 4-4-4-4(-3), 4-4-4-1..4, Amex 4-6-5, Diners 4-6-4.
        if (groups.Length == 3 && groups[0] == 4 && groups[1] == 6 && groups[2] is 4 or 5)
        {
            return true;
        }

        for (var i = 0; i < groups.Length - 1; i++)
        {
            if (groups[i] != 4)
            {
                return false;
            }
        }

        return groups[^1] is >= 1 and <= 4;
    }

    // Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37, Discover 6011/644-649/65, JCB 3528-3589, Diners 300-305/36/38-39, UnionPay 62, Maestro 50/56-58/67.
    private static bool HasIssuerPrefix(ReadOnlySpan<byte> d)
    {
        var two = (d[0] * 10) + d[1];
        var four = (two * 100) + (d[2] * 10) + d[3];
        return d[0] == 4
            || two is >= 51 and <= 55 or 34 or 37 or 36 or 38 or 39 or 62 or 65 or 50 or >= 56 and <= 58 or 67
            || four is >= 2221 and <= 2720 or 6011 or >= 6440 and <= 6499 or >= 3528 and <= 3589 or >= 3000 and <= 3059;
    }

    internal static bool Luhn(ReadOnlySpan<byte> digits)
    {
        var sum = 0;
        var doubleIt = false;
        for (var i = digits.Length - 1; i >= 0; i--)
        {
            int d = digits[i];
            if (doubleIt)
            {
                d *= 2;
                if (d > 9)
                {
                    d -= 9;
                }
            }

            sum += d;
            doubleIt = !doubleIt;
        }

        return sum % 10 == 0;
    }

    // ---- US SSN, UK NINO ----

    [GeneratedRegex(@"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", Options)]
    private static partial Regex SsnPattern();

    // Area 000, 666 and 900-999, group 00 and serial 0000 are never issued.
    private static bool IsSsn(ReadOnlySpan<char> s)
    {
        var area = ((s[0] - '0') * 100) + ((s[1] - '0') * 10) + (s[2] - '0');
        return area is not (0 or 666) && area < 900 && !s.Slice(4, 2).SequenceEqual("00") && !s.Slice(7, 4).SequenceEqual("0000");
    }

    // Prefix letters D, F, I, Q, U, V never; O never second; BG GB KN NK NT TN ZZ never issued; suffix A-D.
    [GeneratedRegex(@"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", Options)]
    private static partial Regex NinoPattern();

    // ---- IBAN ----

    [GeneratedRegex(@"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", Options)]
    private static partial Regex IbanCandidate();

    internal static bool IsIban(ReadOnlySpan<char> candidate)
    {
        Span<char> compact = stackalloc char[34];
        var n = 0;
        foreach (var c in candidate)
        {
            if (c == ' ')
            {
                continue;
            }

            if (n == 34)
            {
                return false;
            }

            compact[n++] = c;
        }

        compact = compact[..n];
        if (!IbanLengthLookup.TryGetValue(compact[..2], out var expected) || expected != n)
        {
            return false;
        }

        // Move the first four characters to the end, letters to 10..35, then mod 97 must be 1.
        var remainder = 0;
        for (var i = 0; i < n; i++)
        {
            var c = compact[(i + 4) % n];
            if (char.IsAsciiDigit(c))
            {
                remainder = ((remainder * 10) + (c - '0')) % 97;
            }
            else if (char.IsAsciiLetterUpper(c))
            {
                remainder = ((remainder * 100) + (c - 'A' + 10)) % 97;
            }
            else
            {
                return false;
            }
        }

        return remainder == 1;
    }

    private static readonly Dictionary<string, int> IbanLengths = new(StringComparer.Ordinal)
    {
        ["AD"] = 24, ["AE"] = 23, ["AL"] = 28, ["AT"] = 20, ["AZ"] = 28, ["BA"] = 20, ["BE"] = 16, ["BG"] = 22, ["BH"] = 22,
        ["BR"] = 29, ["BY"] = 28, ["CH"] = 21, ["CR"] = 22, ["CY"] = 28, ["CZ"] = 24, ["DE"] = 22, ["DK"] = 18, ["DO"] = 28,
        ["EE"] = 20, ["EG"] = 29, ["ES"] = 24, ["FI"] = 18, ["FO"] = 18, ["FR"] = 27, ["GB"] = 22, ["GE"] = 22, ["GI"] = 23,
        ["GL"] = 18, ["GR"] = 27, ["GT"] = 28, ["HR"] = 21, ["HU"] = 28, ["IE"] = 22, ["IL"] = 23, ["IQ"] = 23, ["IS"] = 26,
        ["IT"] = 27, ["JO"] = 30, ["KW"] = 30, ["KZ"] = 20, ["LB"] = 28, ["LC"] = 32, ["LI"] = 21, ["LT"] = 20, ["LU"] = 20,
        ["LV"] = 21, ["MC"] = 27, ["MD"] = 24, ["ME"] = 22, ["MK"] = 19, ["MR"] = 27, ["MT"] = 31, ["MU"] = 30, ["NL"] = 18,
        ["NO"] = 15, ["PK"] = 24, ["PL"] = 28, ["PS"] = 29, ["PT"] = 25, ["QA"] = 29, ["RO"] = 24, ["RS"] = 22, ["SA"] = 24,
        ["SC"] = 31, ["SE"] = 24, ["SI"] = 19, ["SK"] = 24, ["SM"] = 27, ["ST"] = 25, ["SV"] = 28, ["TL"] = 23, ["TN"] = 24,
        ["TR"] = 26, ["UA"] = 29, ["VA"] = 22, ["VG"] = 24, ["XK"] = 20,
    };

    private static readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> IbanLengthLookup = IbanLengths.GetAlternateLookup<ReadOnlySpan<char>>();

    // ---- IP addresses ----

    [GeneratedRegex(@"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)", Options)]
    private static partial Regex Ipv4Pattern();

    // Host addresses only: not 0.x (this network), 127.x (loopback), 224+ (multicast, reserved, broadcast), nor a
    // network (.0) or broadcast (.255) address — which also keeps four-part versions such as 1.0.0.0 out.
    private static bool IsIpv4Host(ReadOnlySpan<char> s)
    {
        var firstDot = s.IndexOf('.');
        var first = int.Parse(s[..firstDot], provider: System.Globalization.CultureInfo.InvariantCulture);
        var last = int.Parse(s[(s.LastIndexOf('.') + 1)..], provider: System.Globalization.CultureInfo.InvariantCulture);
        return first is not (0 or 127) && first < 224 && last is not (0 or 255);
    }

    // A real address: "::" or eight groups (times like 12:30:45 and MAC addresses have neither), at least two groups
    // and one of three or more hex digits (so a::b is not one), not loopback or unspecified.
    private static bool IsIpv6Host(ReadOnlySpan<char> s)
    {
        if (s.Count(':') < 2)
        {
            return false;
        }

        var compressed = s.Contains("::", StringComparison.Ordinal);
        if (!compressed && s.Count(':') != 7)
        {
            return false;
        }

        var groups = 0;
        var longGroup = false;
        foreach (var range in s.Split(':'))
        {
            var length = range.End.GetOffset(s.Length) - range.Start.GetOffset(s.Length);
            if (length > 0)
            {
                groups++;
                longGroup |= length >= 3;
            }
        }

        if (groups < 2 || !longGroup || !IPAddress.TryParse(s, out var address) || address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }

        return !IPAddress.IsLoopback(address) && !address.Equals(IPAddress.IPv6None);
    }

    // ---- phone numbers ----

    [GeneratedRegex(@"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w])", Options)]
    private static partial Regex InternationalPhone();

    // (415) 555-2671, 415-555-2671, 415.555.2671
    [GeneratedRegex(@"(?<![\w.+/-])(?:\(\d{3}\) ?\d{3}[-.]\d{4}|\d{3}([-.])\d{3}\1\d{4})(?![\w-]|\.\d)", RegexOptions.CultureInvariant)]
    private static partial Regex NanpPhone();

    // North American numbering: area code and exchange start with 2-9.
    private static bool IsNanpPhone(ReadOnlySpan<char> s)
    {
        Span<char> digits = stackalloc char[10];
        var n = 0;
        foreach (var c in s)
        {
            if (char.IsAsciiDigit(c) && n < 10)
            {
                digits[n++] = c;
            }
        }

        return n == 10 && digits[0] >= '2' && digits[3] >= '2';
    }

    // National formats with a trunk 0: UK 020 7946 0958 / 07700 900123, DE 030 12345678, FR 01 23 45 67 89.
    [GeneratedRegex(@"(?<![\w+.,/:-])0(?:\d{2,4} \d{3,4} ?\d{3,4}|[1-9](?:[ .]\d{2}){4})(?![\w]|[.,:/-]\d)", Options)]
    private static partial Regex EuropeanPhone();
}
