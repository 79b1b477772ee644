using Flotilla.Fleet;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Providers;

/// <summary>An upstream that answers chat and embeddings calls in the OpenAI wire format (translating when it must).</summary>
internal interface IModelProvider
{
    ProviderConfig Config { get; }

    /// <summary>
    /// One attempt. Returns a failed <see cref="UpstreamReply"/> for upstream errors; throws <see cref="HttpRequestException"/>
    /// for connection failures and <see cref="OperationCanceledException"/> when <paramref name="cancellationToken"/> fires.
    /// </summary>
    Task<UpstreamReply> SendAsync(UpstreamCall call, CancellationToken cancellationToken);
}

internal enum CallKind { Chat, Embeddings }

/// <summary>What one attempt sends: the caller's request and the concrete model it goes to.</summary>
internal sealed record UpstreamCall(CallKind Kind, ChatRequest Request, ModelConfig Model);

/// <summary>Why an attempt did not produce an answer.</summary>
internal enum AttemptOutcome
{
    Ok,
    /// <summary>The upstream answered with an error status.</summary>
    Status,
    ConnectError,
    TtftTimeout,
    Timeout,
    InvalidResponse,
    BrokenStream,
    /// <summary>The provider cannot be used as configured (e.g. its key's environment variable is unset).</summary>
    ConfigError,
    SkippedCooldown,
}

/// <summary>The result of one attempt: an answer (a body or a stream of chunks) or a failure.</summary>
internal sealed class UpstreamReply : IAsyncDisposable
{
    public AttemptOutcome Outcome { get; private init; }

    /// <summary>Upstream HTTP status; 0 when there was no response.</summary>
    public int Status { get; private init; }

    public TimeSpan? RetryAfter { get; private init; }

    /// <summary>A message safe to show to the caller (never a credential).</summary>
    public string? Error { get; private init; }

    /// <summary>Non-streaming answer (OpenAI JSON), or the upstream's error body when it is relayable.</summary>
    public byte[]? Body { get; private init; }

    public TokenUsage Usage { get; init; }

    public IChunkStream? Stream { get; private init; }

    public bool IsSuccess => Outcome == AttemptOutcome.Ok;

    public static UpstreamReply Answer(byte[] body, TokenUsage usage) => new() { Outcome = AttemptOutcome.Ok, Status = 200, Body = body, Usage = usage };

    public static UpstreamReply Streaming(IChunkStream stream) => new() { Outcome = AttemptOutcome.Ok, Status = 200, Stream = stream };

    public static UpstreamReply Failed(AttemptOutcome outcome, int status, string error, byte[]? body = null, TimeSpan? retryAfter = null) =>
        new() { Outcome = outcome, Status = status, Error = error, Body = body, RetryAfter = retryAfter };

    public ValueTask DisposeAsync() => Stream?.DisposeAsync() ?? ValueTask.CompletedTask;
}

/// <summary>
/// A streamed answer as OpenAI <c>chat.completion.chunk</c> payloads (the JSON after <c>data: </c>).
/// <see cref="ReadAsync"/> returns false at the end of a complete stream and throws <see cref="StreamBrokenException"/>
/// when the upstream stops before finishing.
/// </summary>
internal interface IChunkStream : IAsyncDisposable
{
    ValueTask<bool> ReadAsync(CancellationToken cancellationToken);

    ReadOnlyMemory<byte> Current { get; }

    TokenUsage Usage { get; }
}

internal sealed class StreamBrokenException(string message, Exception? inner = null) : Exception(message, inner);
