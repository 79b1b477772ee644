using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Streaming;
using Flotilla.Guardrails;

namespace Flotilla.Gateway.Guardrails;

/// <summary>
/// The guardrail hooks of a model call: <c>llm_input</c> before any other policy (a blocked call costs nothing, and the cache
/// keys on what the model would see), <c>llm_output</c> on the answer, whole or streamed. Chat calls only. Every verdict
/// goes on the call's trace.
/// </summary>
internal static class GuardrailSteps
{
    /// <summary>Runs <c>llm_input</c>: refuses a blocked call; a redacted one continues with the changed request.</summary>
    public static async ValueTask InputAsync(ModelCall call, CancellationToken cancellationToken)
    {
        var engine = call.Runtime.Guardrails;
        if (call.Kind != CallKind.Chat || engine[GuardrailHook.LlmInput].IsEmpty)
        {
            return;
        }

        var request = call.Request!;
        var (texts, slots) = ModelTexts.FromRequest(request.Document);
        var outcome = await engine.RunAsync(GuardrailHook.LlmInput, texts, call.GuardrailContext, cancellationToken);
        call.AddVerdicts("llm_input", outcome.Verdicts);
        if (outcome.IsBlocked)
        {
            throw Blocked("llm_input", outcome);
        }

        if (outcome.Decision == GuardrailDecision.Redacted)
        {
            call.Request = request.WithBody(ModelTexts.Apply(request.Body, slots, outcome.Texts, completion: false));
        }
    }

    /// <summary>Runs <c>llm_output</c> on a whole answer: refuses a blocked one, returns the answer (redacted when it was).</summary>
    public static async ValueTask<byte[]> OutputAsync(ModelCall call, byte[] answer, CancellationToken cancellationToken)
    {
        var engine = call.Runtime.Guardrails;
        if (call.Kind != CallKind.Chat || engine[GuardrailHook.LlmOutput].IsEmpty)
        {
            return answer;
        }

        var (texts, slots) = ModelTexts.FromCompletion(answer);
        var outcome = await engine.RunAsync(GuardrailHook.LlmOutput, texts, call.GuardrailContext, cancellationToken);
        call.AddVerdicts("llm_output", outcome.Verdicts);
        if (outcome.IsBlocked)
        {
            throw Blocked("llm_output", outcome);
        }

        return outcome.Decision == GuardrailDecision.Redacted ? ModelTexts.Apply(answer, slots, outcome.Texts, completion: true) : answer;
    }

    /// <summary>
    /// Puts <c>llm_output</c> in front of a stream and reads its first chunk through it (the dispatcher already read the
    /// upstream's), so nothing unchecked reaches the caller; returns the stream unchanged when the hook is empty.
    /// </summary>
    public static async ValueTask<IChunkStream> GuardStreamAsync(ModelCall call, IChunkStream upstream, CancellationToken cancellationToken)
    {
        var pipeline = call.Runtime.Guardrails[GuardrailHook.LlmOutput];
        if (call.Kind != CallKind.Chat || pipeline.IsEmpty)
        {
            return upstream;
        }

        var guarded = new GuardedChunkStream(upstream, pipeline.CreateStreamingGuard(call.GuardrailContext));
        try
        {
            if (!await guarded.ReadAsync(cancellationToken))
            {
                throw new GatewayException(502, "api_error", ErrorCodes.StreamBroken, "The answer stream ended before its first chunk.");
            }
        }
        catch (GuardrailBlockedException e)
        {
            call.AddVerdicts("llm_output", guarded.Guard.Verdicts);
            throw StreamBlocked(e);
        }

        return guarded;
    }

    /// <summary>After a relayed stream: its verdicts go on the trace.</summary>
    public static void SettleStream(ModelCall call, IChunkStream stream)
    {
        if (stream is GuardedChunkStream guarded)
        {
            call.AddVerdicts("llm_output", guarded.Guard.Verdicts);
        }
    }

    public static GatewayException StreamBlocked(GuardrailBlockedException e) =>
        new(400, "invalid_request_error", ErrorCodes.GuardrailBlocked, $"The answer was stopped by an output guardrail: {e.Message}");

    private static GatewayException Blocked(string hook, GuardrailOutcome outcome) =>
        new(400, "invalid_request_error", ErrorCodes.GuardrailBlocked, outcome.Reason ?? $"Blocked by guardrail '{outcome.BlockedBy?.Name}' on {hook}.");
}
