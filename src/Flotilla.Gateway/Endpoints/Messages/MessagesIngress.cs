using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Endpoints.Messages;

/// <summary>
/// <c>POST /v1/messages</c>: an Anthropic Messages call on the governed path. Admits it like Chat Completions (agent key,
/// here also from <c>x-api-key</c>; tags; body within the size limit), hands the pipeline the request's Chat Completions
/// form plus the caller's own body for Anthropic targets, and writes every answer, stream and error in Anthropic's format.
/// </summary>
internal sealed class MessagesIngress(HttpContext context, AgentKeyRing keys, TimeProvider time) : IModelCallIngress
{
    private readonly string _messageId = "msg_" + Guid.NewGuid().ToString("N");

    public CancellationToken Aborted => context.RequestAborted;

    public async ValueTask AdmitAsync(ModelCall call)
    {
        context.Response.Headers[HttpIngress.TraceIdHeader] = call.TraceId;
        context.Response.Headers["request-id"] = call.TraceId;
        call.Caller = HttpIngress.Authenticate(context, call.Runtime, keys, acceptApiKeyHeader: true);
        call.Metadata = HttpIngress.ReadMetadata(context);
        var body = await HttpIngress.ReadBodyAsync(context, call.Runtime.MaxRequestBodyBytes);
        var beta = context.Request.Headers["anthropic-beta"];
        call.Request = MessagesRequestTranslator.Read(body, anthropicBeta: beta.Count == 0 ? null : string.Join(',', beta.ToArray()));
        call.CacheControl = HttpIngress.ReadCacheControl(context);
    }

    public void Describe(ModelCall call, string? target, int attempts, string? cache) => HttpIngress.Describe(context, target, attempts, cache);

    public async ValueTask WriteAnswerAsync(ModelCall call, int status, ReadOnlyMemory<byte> body)
    {
        byte[] answer;
        try
        {
            answer = status == 200 ? MessagesAnswerTranslator.FromCompletion(body.Span, _messageId) : MessagesAnswerTranslator.ErrorFromChat(status, body.Span);
        }
        catch (Exception e) when (TranslatedStream.Untranslatable(e))
        {
            throw TranslatedStream.UntranslatableAnswer("Messages");
        }

        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = answer.Length;
        if (call.Error is { } error)
        {
            response.Headers["X-Flotilla-Error-Code"] = error.Code;
        }

        await response.BodyWriter.WriteAsync(answer, context.RequestAborted);
    }

    public async ValueTask WriteErrorAsync(ModelCall call, GatewayException error) => await WriteErrorAsync(context, error);

    public static async Task WriteErrorAsync(HttpContext context, GatewayException error)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            return;
        }

        response.StatusCode = error.Status;
        response.ContentType = "application/json";
        response.Headers["X-Flotilla-Error-Code"] = error.Code;
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        await response.Body.WriteAsync(MessagesAnswerTranslator.Error(error.Status, error.Message), context.RequestAborted);
    }

    public ValueTask<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(
        ModelCall call, IChunkStream stream, CompletionAssembler? assembler, CancellationTokenSource deadline, CancellationToken cancellationToken) =>
        TranslatedStream.RelayAsync(context, call, stream, assembler, deadline, time, new MessagesStreamWriter(_messageId, PromptEstimate(call)), cancellationToken);

    public async ValueTask<double> WriteCachedAsync(ModelCall call, CachedAnswer hit)
    {
        if (call.Request!.Stream)
        {
            return await TranslatedStream.ReplayAsync(context, call, hit, time, new MessagesStreamWriter(_messageId, PromptEstimate(call)));
        }

        await WriteAnswerAsync(call, 200, hit.Completion);
        return time.GetElapsedTime(call.Start).TotalMilliseconds;
    }

    /// <summary><c>message_start</c>'s input tokens: the tokenizer's count when budgets or token limits made an estimate, else 0 (the real count follows in <c>message_delta</c>).</summary>
    private static long PromptEstimate(ModelCall call) => call.EstimatedInputTokens > 0 ? call.ExactInputTokens() : 0;
}
