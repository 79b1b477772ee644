using System.IO.Pipelines;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Guardrails;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Endpoints;

/// <summary>A streamed answer written in another wire format, chunk by chunk (Anthropic events, Responses events).</summary>
internal interface IStreamTranslation
{
    /// <summary>The stream's opening events, if the format has any before the first chunk.</summary>
    void Start(PipeWriter output);

    /// <summary>Translates one <c>chat.completion.chunk</c>.</summary>
    void Add(ReadOnlySpan<byte> chunk);

    /// <summary>The closing events of a stream that finished.</summary>
    ValueTask FinishAsync(TokenUsage usage);

    /// <summary>The format's error event for a stream that failed after it started.</summary>
    void Fail(GatewayException error);
}

/// <summary>Relays a stream, or replays a cached answer as one, through an <see cref="IStreamTranslation"/>.</summary>
internal static class TranslatedStream
{
    public static async ValueTask<(double? TtftMs, GatewayException? Error)> RelayAsync(HttpContext context, ModelCall call, IChunkStream stream,
        CompletionAssembler? assembler, CancellationTokenSource deadline, TimeProvider time, IStreamTranslation events, CancellationToken cancellationToken)
    {
        var output = HttpIngress.StartEventStream(context);
        events.Start(output);
        double? ttft = null;
        GatewayException error;
        try
        {
            events.Add(stream.Current.Span);
            assembler?.Add(stream.Current.Span);
            await output.FlushAsync(cancellationToken);
            ttft = time.GetElapsedTime(call.Start).TotalMilliseconds;
            while (await stream.ReadAsync(cancellationToken))
            {
                events.Add(stream.Current.Span);
                assembler?.Add(stream.Current.Span);
                await output.FlushAsync(cancellationToken);
            }

            await events.FinishAsync(stream.Usage);
            await output.FlushAsync(cancellationToken);
            return (ttft, null);
        }
        catch (GuardrailBlockedException e)
        {
            error = GuardrailSteps.StreamBlocked(e);
        }
        catch (StreamBrokenException e)
        {
            error = new GatewayException(502, "api_error", ErrorCodes.StreamBroken, $"The answer stopped midway: {e.Message}.");
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            error = new GatewayException(504, "api_error", ErrorCodes.UpstreamTimeout, "The stream did not finish within the request timeout.");
        }
        catch (Exception e) when (Untranslatable(e))
        {
            error = new GatewayException(502, "api_error", ErrorCodes.InvalidUpstreamAnswer, "The upstream's stream is not well-formed chat completion chunks, so it cannot be translated.");
        }

        events.Fail(error);
        await output.FlushAsync(CancellationToken.None);
        return (ttft ?? time.GetElapsedTime(call.Start).TotalMilliseconds, error);
    }

    /// <summary>Replays a cached answer as a stream; returns the time to its first event.</summary>
    public static async ValueTask<double> ReplayAsync(HttpContext context, ModelCall call, CachedAnswer hit, TimeProvider time, IStreamTranslation events)
    {
        var output = HttpIngress.StartEventStream(context);
        events.Start(output);
        double? ttft = null;
        foreach (var chunk in CachedReplay.ToChunks(hit.Completion, includeUsage: true))
        {
            events.Add(chunk);
            await output.FlushAsync(context.RequestAborted);
            ttft ??= time.GetElapsedTime(call.Start).TotalMilliseconds;
        }

        await events.FinishAsync(hit.Usage);
        await output.FlushAsync(context.RequestAborted);
        return ttft ?? 0;
    }

    /// <summary>An upstream answer that passed as OpenAI JSON but lacks what a translation into another format needs.</summary>
    public static bool Untranslatable(Exception e) =>
        e is System.Text.Json.JsonException or InvalidOperationException or KeyNotFoundException or FormatException or IndexOutOfRangeException;

    public static GatewayException UntranslatableAnswer(string format) =>
        new(502, "api_error", ErrorCodes.InvalidUpstreamAnswer, $"The upstream's answer is not a well-formed chat completion, so it cannot be given in the {format} format.");
}
