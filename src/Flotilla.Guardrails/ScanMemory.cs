using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails;

/// <summary>What one guardrail made of one text: its scan, what it counted and, when asked for, its edits.</summary>
internal sealed record RememberedScan(LocalScan Scan, IReadOnlyList<GuardrailFinding> Findings, IReadOnlyList<TextEdit>? Edits);

/// <summary>
/// One guardrail's scans of long texts, by a 128-bit hash of the text (a collision is out of practical reach). Bounded:
/// when full it is cleared and refills with what callers send next.
/// </summary>
internal sealed class ScanMemory
{
    /// <summary>
    /// Shorter texts are scanned every time. A system prompt or a tool result of a few lines is resent on every step of a
    /// loop too, and hashing it costs far less than the prompt-injection scan (tens of nanoseconds against microseconds).
    /// </summary>
    public const int MinLength = 64;

    /// <summary>Texts remembered per guardrail (~100 bytes each) before the memory is cleared.</summary>
    public const int Capacity = 20_000;

    private readonly ConcurrentDictionary<UInt128, RememberedScan> _scans = new();

    public static bool Worthwhile(string text) => text.Length >= MinLength;

    public static UInt128 Key(string text) => XxHash128.HashToUInt128(MemoryMarshal.AsBytes(text.AsSpan()));

    public int Count => _scans.Count;

    public bool TryGet(UInt128 key, out RememberedScan scan) => _scans.TryGetValue(key, out scan!);

    public void Remember(UInt128 key, RememberedScan scan)
    {
        if (_scans.Count >= Capacity)
        {
            _scans.Clear();
        }

        _scans.TryAdd(key, scan);
    }
}
