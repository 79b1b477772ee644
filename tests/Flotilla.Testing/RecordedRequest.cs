using System.Text.Json.Nodes;

namespace Flotilla.Testing;

/// <summary>A request as a <see cref="FakeUpstream"/> received it.</summary>
public sealed record RecordedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body)
{
    /// <summary>The body parsed as JSON (throws when it is not JSON).</summary>
    public JsonNode Json => JsonNode.Parse(Body) ?? throw new InvalidOperationException("the request body is JSON null");

    /// <summary>A header's value (several values joined by commas), or null when absent.</summary>
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}
