using Flotilla.Fleet;
using Flotilla.Governance.Errors;

namespace Flotilla.Governance.Policy;

/// <summary>
/// The rules for a call's tags (<c>X-Flotilla-Metadata</c> over HTTP, a dictionary in process): they are stored, rolled up
/// into cost reports and shown to operators, so they are few, short and plain text.
/// </summary>
public static class CallTags
{
    public const int MaxTags = 32;
    public const int MaxKeyLength = 64;
    public const int MaxValueLength = 256;

    public const string Rule = "X-Flotilla-Metadata must be a JSON object of strings, e.g. {\"loop\":\"triage\",\"run\":\"42\"} " +
        "(at most 32 keys of up to 64 characters, values up to 256 characters, no control characters).";

    /// <summary>Throws a 400 <c>invalid_metadata</c> unless one more tag <paramref name="key"/> = <paramref name="value"/> may join <paramref name="count"/> others.</summary>
    public static void Check(string key, string value, int count)
    {
        if (key.Length is 0 or > MaxKeyLength || value.Length > MaxValueLength || count >= MaxTags)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, Rule);
        }

        // A CR/LF or an escape sequence has no business in a tag.
        if (DisplayText.HasUnsafe(key) || DisplayText.HasUnsafe(value))
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata,
                $"X-Flotilla-Metadata key '{DisplayText.Safe(key, MaxKeyLength)}' has a control character; keys and values are plain text. " + Rule);
        }
    }
}
