using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Loading;

/// <summary>One problem in a fleet file, printed as <c>FILE:LINE:COL: message</c> (line and column 1-based).</summary>
public sealed record FleetError(SourceLocation Location, string Message)
{
    public override string ToString() => $"{Location}: {Message}";
}

/// <summary>Collects every error instead of stopping at the first, as a validator should.</summary>
internal sealed partial class FleetDiagnostics(string file)
{
    private readonly List<FleetError> _errors = [];
    private readonly Dictionary<(object Owner, string Key), SourceLocation> _spans = new(OwnerKeyComparer.Instance);

    public string File { get; } = file;

    public IReadOnlyList<FleetError> Errors => _errors;

    public SourceLocation At(YamlNode node) => At(node.Start);

    // YamlDotNet's marks are already 1-based; Mark.Empty (0, 0) is clamped so no message ever says line 0.
    public SourceLocation At(Mark mark) => new(File, (int)Math.Max(1, mark.Line), (int)Math.Max(1, mark.Column));

    public void Error(YamlNode node, string message) => Error(At(node), message);

    /// <summary>Records an error; a credential-shaped substring never reaches the message, whatever echoed it.</summary>
    public void Error(SourceLocation location, string message) =>
        _errors.Add(new FleetError(location, Shown(CredentialShape().Replace(message, "[redacted]"))));

    /// <summary>
    /// Messages quote the file's text, which may hold control characters (an ESC sequence, a NUL) or be huge: both are made safe
    /// for a terminal, and a long message keeps its start and its end (where the remedy is) around a marker.
    /// </summary>
    private static string Shown(string message)
    {
        const int Head = 600, Tail = 300;
        message = DisplayText.Safe(message);
        return message.Length <= Head + Tail + 50
            ? message
            : $"{message[..Head]}…[{message.Length - Head - Tail} chars]…{message[^Tail..]}";
    }

    public bool HasErrorAt(SourceLocation location) => _errors.Exists(e => e.Location == location);

    /// <summary>
    /// Remembers where a key of a loaded record was written (<c>model</c>, <c>subagents[1]</c>), so that checks made
    /// after loading point at the value itself rather than at the start of its mapping.
    /// </summary>
    public void Remember(object owner, string key, SourceLocation location) => _spans[(owner, key)] = location;

    public SourceLocation Where(object owner, string key, SourceLocation fallback) =>
        _spans.TryGetValue((owner, key), out var location) ? location : fallback;

    /// <summary>Whether the text has the shape of a well-known credential (OpenAI, Anthropic, GitHub, AWS, Slack, Stripe, private keys).</summary>
    public static bool LooksLikeCredential(string text) => CredentialShape().IsMatch(text);

    /// <summary><paramref name="text"/> with every credential-shaped run replaced by <c>[redacted]</c>.</summary>
    public static string RedactCredentials(string text) => CredentialShape().Replace(text, "[redacted]");

    [GeneratedRegex(@"(sk-(ant-|proj-)?[A-Za-z0-9_\-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|AKIA[0-9A-Z]{16}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_live_[A-Za-z0-9]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)")]
    private static partial Regex CredentialShape();

    // Records compare by value; two identical declarations are still two places in the file.
    private sealed class OwnerKeyComparer : IEqualityComparer<(object Owner, string Key)>
    {
        public static OwnerKeyComparer Instance { get; } = new();

        public bool Equals((object Owner, string Key) x, (object Owner, string Key) y) =>
            ReferenceEquals(x.Owner, y.Owner) && string.Equals(x.Key, y.Key, StringComparison.Ordinal);

        public int GetHashCode((object Owner, string Key) obj) =>
            HashCode.Combine(RuntimeHelpers.GetHashCode(obj.Owner), StringComparer.Ordinal.GetHashCode(obj.Key));
    }
}
