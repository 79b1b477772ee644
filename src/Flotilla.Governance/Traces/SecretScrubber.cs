using System.Text.RegularExpressions;

namespace Flotilla.Governance.Traces;

/// <summary>Removes credential-shaped text from messages before they are stored or logged (upstreams sometimes echo keys).</summary>
public static partial class SecretScrubber
{
    public static string? Scrub(string? text) => text is null ? null : Credential().Replace(text, "[redacted]");

    /// <summary>The same for a UTF-8 body; returns the input itself when nothing is found.</summary>
    public static byte[] ScrubBytes(byte[] body)
    {
        var text = System.Text.Encoding.UTF8.GetString(body);
        return Credential().IsMatch(text) ? System.Text.Encoding.UTF8.GetBytes(Credential().Replace(text, "[redacted]")) : body;
    }

    // Not preceded by a letter or digit: "ask-me-anything" or "task-runner-7" are words, not keys.
    [GeneratedRegex(@"(?<![A-Za-z0-9])(flt_[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-\*\.]{8,}|gh[pousr]_[A-Za-z0-9]{10,}|AKIA[0-9A-Z]{16}|(?i:bearer)\s+[A-Za-z0-9_\-\.=]{8,}|xox[abprs]-[A-Za-z0-9-]{8,})")]
    private static partial Regex Credential();
}
