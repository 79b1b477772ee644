using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Flotilla.Gateway.Protocol;

/// <summary>
/// Checks on a JSON body that <see cref="Utf8JsonReader"/> leaves to whoever later reads a string out of it: bytes that are
/// not UTF-8 and <c>\uD800</c>-style escapes that encode half a character. Either would make every later reader (routing,
/// token estimate, guardrails, cache key) throw; the gateway refuses them once, up front, with a 400.
/// </summary>
internal static class JsonText
{
    /// <summary>Deepest nesting accepted, the same for the one-pass scan and any DOM built later.</summary>
    public const int MaxDepth = 64;

    public static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = MaxDepth };

    /// <summary>Null when <paramref name="json"/> is well-encoded; otherwise a message that says what and where.</summary>
    public static string? FindEncodingError(ReadOnlySpan<byte> json)
    {
        if (!Utf8.IsValid(json))
        {
            var position = FirstInvalidByte(json);
            return $"The request body is not valid UTF-8 (byte 0x{json[position]:X2} at offset {position}). Send JSON encoded as UTF-8.";
        }

        var offset = 0;
        while (true)
        {
            var found = json[offset..].IndexOf("\\u"u8);
            if (found < 0)
            {
                return null;
            }

            var at = offset + found;
            offset = at + 2;
            var backslashes = 1;
            while (at - backslashes >= 0 && json[at - backslashes] == (byte)'\\')
            {
                backslashes++;
            }

            // An even run means this backslash is itself escaped ("\\u" is a backslash and a u), and a malformed escape is
            // left for the reader to report.
            if (backslashes % 2 == 0 || !TryHex(json, at + 2, out var unit))
            {
                continue;
            }

            if (char.IsHighSurrogate((char)unit))
            {
                if (json.Length >= at + 12 && json[at + 6] == (byte)'\\' && json[at + 7] == (byte)'u'
                    && TryHex(json, at + 8, out var low) && char.IsLowSurrogate((char)low))
                {
                    offset = at + 12;
                    continue;
                }

                return Unpaired(unit, at);
            }

            if (char.IsLowSurrogate((char)unit))
            {
                return Unpaired(unit, at);
            }

            offset = at + 6;
        }
    }

    private static string Unpaired(int unit, int at) =>
        $"The request body has an unpaired surrogate escape \\u{unit:X4} at offset {at}: it encodes half a character. " +
        "Characters beyond U+FFFF are written as a pair (\\uD83D\\uDE00) or as plain UTF-8.";

    private static bool TryHex(ReadOnlySpan<byte> json, int start, out int value)
    {
        value = 0;
        if (json.Length < start + 4)
        {
            return false;
        }

        for (var i = start; i < start + 4; i++)
        {
            var digit = HexValue(json[i]);
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | digit;
        }

        return true;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };

    private static int FirstInvalidByte(ReadOnlySpan<byte> json)
    {
        var offset = 0;
        while (offset < json.Length)
        {
            if (Rune.DecodeFromUtf8(json[offset..], out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }

            offset += consumed;
        }

        return 0;
    }
}
