using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Endpoints.Responses;

/// <summary>
/// <c>POST /v1/responses</c>: an OpenAI Responses call on the governed path. Admits it like Chat Completions, prepends the
/// stored turns of <c>previous_response_id</c> (this agent's only), and writes the answer as a <c>response</c> object or
/// its events; keeps the turn unless <c>store: false</c>. Errors are OpenAI error JSON, as on Chat Completions.
/// </summary>
internal sealed class ResponsesIngress(HttpContext context, AgentKeyRing keys, ResponseHistory history, TimeProvider time) : IModelCallIngress
{
    private readonly string _responseId = "resp_" + Guid.NewGuid().ToString("N");
    private ResponsesTurn? _turn;
    private ResponsesWriter? _writer;

    public CancellationToken Aborted => context.RequestAborted;

    public async ValueTask AdmitAsync(ModelCall call)
    {
        context.Response.Headers[HttpIngress.TraceIdHeader] = call.TraceId;
        call.Caller = HttpIngress.Authenticate(context, call.Runtime, keys);
        call.Metadata = HttpIngress.ReadMetadata(context);
        var body = await HttpIngress.ReadBodyAsync(context, call.Runtime.MaxRequestBodyBytes);
        using var document = ResponsesRequestTranslator.Parse(body);
        var root = document.RootElement;
        IReadOnlyList<string> earlier = ResponsesRequestTranslator.PreviousResponseId(root) is { } previous
            ? await history.ConversationAsync(call.Caller.Agent.Name, previous, context.RequestAborted)
            : [];
        _turn = ResponsesRequestTranslator.Read(root, earlier);
        _writer = new ResponsesWriter(_responseId, _turn, time.GetUtcNow().ToUnixTimeSeconds());
        call.Request = _turn.Request;
        call.CacheControl = HttpIngress.ReadCacheControl(context);
    }

    public void Describe(ModelCall call, string? target, int attempts, string? cache) => HttpIngress.Describe(context, target, attempts, cache);

    public async ValueTask WriteAnswerAsync(ModelCall call, int status, ReadOnlyMemory<byte> body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (status != 200)
        {
            // An upstream's refusal, already OpenAI error JSON.
            response.ContentLength = body.Length;
            await response.BodyWriter.WriteAsync(body, context.RequestAborted);
            return;
        }

        try
        {
            _writer!.ReadCompletion(body.Span);
        }
        catch (Exception e) when (TranslatedStream.Untranslatable(e))
        {
            throw TranslatedStream.UntranslatableAnswer("Responses");
        }

        await SaveAsync(call);
        var answer = _writer.Response();
        response.ContentLength = answer.Length;
        await response.BodyWriter.WriteAsync(answer, context.RequestAborted);
    }

    public async ValueTask WriteErrorAsync(ModelCall call, GatewayException error) => await ErrorWriter.WriteAsync(context, error);

    public ValueTask<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(
        ModelCall call, IChunkStream stream, CompletionAssembler? assembler, CancellationTokenSource deadline, CancellationToken cancellationToken) =>
        TranslatedStream.RelayAsync(context, call, stream, assembler, deadline, time, new Events(this, call), cancellationToken);

    public async ValueTask<double> WriteCachedAsync(ModelCall call, CachedAnswer hit)
    {
        if (call.Request!.Stream)
        {
            return await TranslatedStream.ReplayAsync(context, call, hit, time, new Events(this, call));
        }

        await WriteAnswerAsync(call, 200, hit.Completion);
        return time.GetElapsedTime(call.Start).TotalMilliseconds;
    }

    private async Task SaveAsync(ModelCall call) =>
        _writer!.Stored = _turn!.Store && await history.SaveAsync(call.Caller!.Agent.Name, _responseId, _turn, _writer, CancellationToken.None);

    /// <summary>The response's events; a finished stream's turn is stored before <c>response.completed</c> says whether it was.</summary>
    private sealed class Events(ResponsesIngress ingress, ModelCall call) : IStreamTranslation
    {
        public void Start(System.IO.Pipelines.PipeWriter output) => ingress._writer!.Start(output);

        public void Add(ReadOnlySpan<byte> chunk) => ingress._writer!.Add(chunk);

        public async ValueTask FinishAsync(Protocol.TokenUsage usage)
        {
            await ingress.SaveAsync(call);
            ingress._writer!.Finish(usage);
        }

        public void Fail(GatewayException error) => ingress._writer!.Error(error.Code, error.Message);
    }
}
