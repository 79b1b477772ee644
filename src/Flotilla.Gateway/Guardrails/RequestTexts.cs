using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Flotilla.Gateway.Guardrails;

/// <summary>
/// The long texts of recent requests, by a 128-bit hash of their JSON: an agent loop resends its whole history on every
/// step, and decoding each old message into a new string again (tens of KB per call) cost more than the guardrails'
/// remembered verdicts on it. A text is found again only for byte-identical JSON, so the string is exactly what decoding
/// would give. Bounded by characters held; when full it is cleared and refills with what callers send next.
/// </summary>
internal static class RequestTexts
{
    /// <summary>Shorter texts are decoded every time: decoding them costs about what hashing and a lookup would.</summary>
    private const int MinLength = 256;

    /// <summary>Characters held at most (8 MB of strings).</summary>
    private const long MaxChars = 4L * 1024 * 1024;

    private static readonly ConcurrentDictionary<UInt128, string> Texts = new();
    private static long _chars;

    /// <summary>The string value of <paramref name="element"/> (a JSON string).</summary>
    public static string Get(JsonElement element)
    {
        var raw = JsonMarshal.GetRawUtf8Value(element);
        if (raw.Length < MinLength + 2)
        {
            return element.GetString()!;
        }

        var key = XxHash128.HashToUInt128(raw);
        if (Texts.TryGetValue(key, out var text))
        {
            return text;
        }

        text = element.GetString()!;
        if (Interlocked.Add(ref _chars, text.Length) > MaxChars)
        {
            Texts.Clear();
            Interlocked.Exchange(ref _chars, text.Length);
        }

        Texts.TryAdd(key, text);
        return text;
    }
}
