using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Providers;

namespace Flotilla.Gateway.Pipeline;

/// <summary>
/// Where a governed model call comes from and where its answer goes: the OpenAI-compatible HTTP endpoints, or an in-process
/// caller such as the harness. The pipeline runs the policies; the ingress only admits the call (who, what) and writes
/// what the pipeline hands it in its own wire format. Methods are called at most once per call, in this order: admit,
/// then one of answer / relay / cached / error.
/// </summary>
internal interface IModelCallIngress
{
    /// <summary>Cancelled when the caller goes away.</summary>
    CancellationToken Aborted { get; }

    /// <summary>Sets <see cref="GovernedCall.Caller"/>, <see cref="GovernedCall.Metadata"/>, <see cref="ModelCall.Request"/> and the cache control, or throws <see cref="GatewayException"/>.</summary>
    ValueTask AdmitAsync(ModelCall call);

    /// <summary>Which target answered and after how many attempts (response headers over HTTP).</summary>
    void Describe(ModelCall call, string? target, int attempts, string? cache);

    /// <summary>A whole JSON answer: a completion, embeddings, or an upstream's refusal relayed with its status.</summary>
    ValueTask WriteAnswerAsync(ModelCall call, int status, ReadOnlyMemory<byte> body);

    /// <summary>
    /// Relays a stream whose first chunk is already read; returns the time to first token and, when the stream broke, was
    /// stopped by a guardrail or timed out midway, the error it ended with (already told to the caller).
    /// </summary>
    ValueTask<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(ModelCall call, IChunkStream stream, CompletionAssembler? assembler,
        CancellationTokenSource deadline, CancellationToken cancellationToken);

    /// <summary>Answers from the cache (as JSON, or replayed as a stream when the caller asked for one); returns the time to first token.</summary>
    ValueTask<double> WriteCachedAsync(ModelCall call, CachedAnswer hit);

    /// <summary>Tells the caller the call failed.</summary>
    ValueTask WriteErrorAsync(ModelCall call, GatewayException error);
}
