using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Pipeline;

/// <summary>What an in-process governed call produced: the status and body an HTTP caller would have got, and its trace.</summary>
/// <param name="Body">The completion (or embeddings) JSON on success; OpenAI error JSON otherwise. A streamed request is
/// answered as one assembled completion.</param>
public sealed record GovernedCallResult(int Status, byte[] Body, string TraceId, string? Target, int Attempts, string? Cache)
{
    /// <summary>Tokens the call used (none for a cache hit).</summary>
    public long InputTokens { get; init; }

    public long OutputTokens { get; init; }

    /// <summary>What the call cost, as priced on its trace.</summary>
    public decimal CostUsd { get; init; }

    public bool IsSuccess => Status is >= 200 and < 300;
}

/// <summary>
/// The governed path for callers inside the process, such as the harness: the same routing, input and output guardrails,
/// rate limits, cache, budgets, fallback and trace as <c>POST /v1/chat/completions</c>, without a loopback HTTP hop or a key.
/// The caller names the registered agent it acts as; an agent not in the fleet is refused like an unknown key.
/// </summary>
public sealed class GovernedModelCalls
{
    private readonly ModelCallPipeline _pipeline;
    private readonly TimeProvider _time;

    internal GovernedModelCalls(ModelCallPipeline pipeline, TimeProvider time)
    {
        _pipeline = pipeline;
        _time = time;
    }

    /// <summary>A chat completion as <paramref name="agent"/>; <paramref name="requestJson"/> is an OpenAI chat completions body.</summary>
    public Task<GovernedCallResult> CompleteChatAsync(string agent, ReadOnlyMemory<byte> requestJson, IReadOnlyDictionary<string, string>? metadata = null,
        string? traceparent = null, CancellationToken cancellationToken = default) =>
        RunAsync(CallKind.Chat, agent, requestJson, metadata, traceparent, cancellationToken);

    /// <summary>Embeddings as <paramref name="agent"/>; <paramref name="requestJson"/> is an OpenAI embeddings body.</summary>
    public Task<GovernedCallResult> EmbedAsync(string agent, ReadOnlyMemory<byte> requestJson, IReadOnlyDictionary<string, string>? metadata = null,
        string? traceparent = null, CancellationToken cancellationToken = default) =>
        RunAsync(CallKind.Embeddings, agent, requestJson, metadata, traceparent, cancellationToken);

    private async Task<GovernedCallResult> RunAsync(CallKind kind, string agent, ReadOnlyMemory<byte> requestJson, IReadOnlyDictionary<string, string>? metadata,
        string? traceparent, CancellationToken cancellationToken)
    {
        var headers = traceparent is null ? null : new HeaderDictionary { ["traceparent"] = traceparent };
        var call = _pipeline.Begin(kind, headers);
        var ingress = new InProcessIngress(agent, requestJson, metadata, _time, cancellationToken);
        await _pipeline.RunAsync(call, ingress);
        // The caller gave up: say so, rather than hand back an empty "success" (the call is traced as 499).
        cancellationToken.ThrowIfCancellationRequested();
        var used = call.CacheState == "hit" ? default : call.Usage;
        return new GovernedCallResult(ingress.Status, ingress.Body, call.TraceId, ingress.Target, ingress.Attempts, ingress.Cache)
        {
            InputTokens = used.InputTokens,
            OutputTokens = used.OutputTokens,
            CostUsd = call.CostUsd,
        };
    }

    /// <summary>Admits the named agent's call and keeps what an HTTP caller would have been sent.</summary>
    private sealed class InProcessIngress(string agent, ReadOnlyMemory<byte> requestJson, IReadOnlyDictionary<string, string>? metadata, TimeProvider time,
        CancellationToken cancellationToken) : IModelCallIngress
    {
        public int Status { get; private set; } = 200;

        public byte[] Body { get; private set; } = [];

        public string? Target { get; private set; }

        public int Attempts { get; private set; }

        public string? Cache { get; private set; }

        public CancellationToken Aborted => cancellationToken;

        public ValueTask AdmitAsync(ModelCall call)
        {
            if (!call.Runtime.Agents.TryGetValue(agent, out var config))
            {
                throw new GatewayException(401, "authentication_error", ErrorCodes.InvalidKey,
                    $"No agent '{Fleet.DisplayText.Safe(agent, 128)}' in the fleet (revision {call.Runtime.Revision}); in-process calls act as a registered agent.");
            }

            call.Caller = new CallerIdentity(config, "in-process");
            if (metadata is { Count: > 0 })
            {
                var tags = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var (key, value) in metadata)
                {
                    CallTags.Check(key, value, tags.Count);
                    tags[key] = value;
                }

                call.Metadata = tags;
            }

            if (requestJson.Length > call.Runtime.MaxRequestBodyBytes)
            {
                throw new GatewayException(413, "invalid_request_error", ErrorCodes.BodyTooLarge,
                    $"The request body is {requestJson.Length} bytes; the limit is {call.Runtime.MaxRequestBodyBytes} (gateway.limits.max_request_body_bytes).");
            }

            var body = requestJson.ToArray();
            call.Request = call.Kind == CallKind.Chat ? ChatRequest.ParseChat(body) : ChatRequest.ParseEmbeddings(body);
            return ValueTask.CompletedTask;
        }

        public void Describe(ModelCall call, string? target, int attempts, string? cache)
        {
            Target = target;
            Attempts = attempts;
            Cache = cache;
        }

        public ValueTask WriteAnswerAsync(ModelCall call, int status, ReadOnlyMemory<byte> body)
        {
            Status = status;
            Body = body.ToArray();
            return ValueTask.CompletedTask;
        }

        public async ValueTask<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(ModelCall call, IChunkStream stream, CompletionAssembler? assembler,
            CancellationTokenSource deadline, CancellationToken token)
        {
            // In process there is no one to stream to: the chunks are assembled into one completion.
            var whole = new CompletionAssembler();
            var ttft = time.GetElapsedTime(call.Start).TotalMilliseconds;
            try
            {
                do
                {
                    whole.Add(stream.Current.Span);
                    assembler?.Add(stream.Current.Span);
                }
                while (await stream.ReadAsync(token));
            }
            catch (Guardrails.GuardrailBlockedException e)
            {
                var error = Guardrails.GuardrailSteps.StreamBlocked(e);
                await WriteErrorAsync(call, error);
                return (ttft, error);
            }
            catch (StreamBrokenException e)
            {
                var error = new GatewayException(502, "api_error", ErrorCodes.StreamBroken, $"The answer stopped midway: {e.Message}.");
                await WriteErrorAsync(call, error);
                return (ttft, error);
            }

            Body = whole.Build(call.Result?.Target?.Name ?? "", stream.Usage, time.GetUtcNow().ToUnixTimeSeconds()) ?? [];
            return (ttft, null);
        }

        public ValueTask<double> WriteCachedAsync(ModelCall call, CachedAnswer hit)
        {
            Body = hit.Completion;
            return ValueTask.FromResult(time.GetElapsedTime(call.Start).TotalMilliseconds);
        }

        public ValueTask WriteErrorAsync(ModelCall call, GatewayException error)
        {
            Status = error.Status;
            Body = ErrorWriter.ToJson(error);
            return ValueTask.CompletedTask;
        }
    }
}
