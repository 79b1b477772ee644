using System.Text.Json.Nodes;

namespace Flotilla.Testing;

/// <summary>
/// What a <see cref="FakeUpstream"/> does with one request. Queue them with <see cref="FakeUpstream.Enqueue"/>; each request takes
/// the next one, and an empty queue means <see cref="Answer"/>.
/// </summary>
public sealed record UpstreamBehaviour
{
    private UpstreamBehaviour(UpstreamBehaviourKind kind) => Kind = kind;

    public UpstreamBehaviourKind Kind { get; }

    /// <summary>Status and body of a <see cref="UpstreamBehaviourKind.Respond"/>.</summary>
    public int Status { get; private init; } = 200;

    public string? Body { get; private init; }

    public IReadOnlyList<(string Name, string Value)> Headers { get; private init; } = [];

    /// <summary>Text of the answer; null: the default text (it names the upstream and the model).</summary>
    public string? Text { get; private init; }

    /// <summary>Arguments (JSON) of the tool call made when the request offers tools; null: the default arguments.</summary>
    public string? ToolArguments { get; private init; }

    /// <summary>Thinking an Anthropic answer opens with (a signed <c>thinking</c> block); ignored by the OpenAI path.</summary>
    public string? Thinking { get; private init; }

    /// <summary>Events sent before the connection is cut (<see cref="UpstreamBehaviourKind.BreakAfterEvents"/>).</summary>
    public int Events { get; private init; }

    /// <summary>A valid answer in the protocol of the path: text, or a tool call when tools are offered (and no tool result came back).</summary>
    public static UpstreamBehaviour Answer(string? text = null, string? toolArguments = null, string? thinking = null) =>
        new(UpstreamBehaviourKind.Answer) { Text = text, ToolArguments = toolArguments, Thinking = thinking };

    /// <summary>A fixed status and body, e.g. 429 with <c>("Retry-After", "0")</c>, 500 or 503.</summary>
    public static UpstreamBehaviour Respond(int status, string body, params (string Name, string Value)[] headers) =>
        new(UpstreamBehaviourKind.Respond) { Status = status, Body = body, Headers = headers };

    /// <summary>An OpenAI-shaped error body with <paramref name="status"/>.</summary>
    public static UpstreamBehaviour Error(int status, string message = "fake upstream failure", params (string Name, string Value)[] headers) =>
        Respond(status, new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "api_error", ["code"] = null } }.ToJsonString(), headers);

    /// <summary>Sends nothing at all (no status line) until the caller gives up or the fake stops.</summary>
    public static UpstreamBehaviour StallBeforeHeaders { get; } = new(UpstreamBehaviourKind.StallBeforeHeaders);

    /// <summary>Sends 200 and the event-stream headers, then nothing until the caller gives up.</summary>
    public static UpstreamBehaviour StallBeforeFirstEvent { get; } = new(UpstreamBehaviourKind.StallBeforeFirstEvent);

    /// <summary>Streams the first <paramref name="events"/> events of a valid answer, then cuts the connection.</summary>
    public static UpstreamBehaviour BreakAfterEvents(int events) => new(UpstreamBehaviourKind.BreakAfterEvents) { Events = events };

    /// <summary>200 with a body that is not JSON.</summary>
    public static UpstreamBehaviour Garbage { get; } = new(UpstreamBehaviourKind.Garbage);

    /// <summary>Cuts the connection before any response.</summary>
    public static UpstreamBehaviour Abort { get; } = new(UpstreamBehaviourKind.Abort);
}

public enum UpstreamBehaviourKind
{
    Answer,
    Respond,
    StallBeforeHeaders,
    StallBeforeFirstEvent,
    BreakAfterEvents,
    Garbage,
    Abort,
}
