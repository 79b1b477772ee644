using System.Security.Cryptography;
using Flotilla.Fleet;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Guardrails;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;
using Flotilla.Gateway.Telemetry;
using Flotilla.Gateway.Traces;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Pipeline;

/// <summary>
/// The governed path of a model call, in one place: admit (identity and request, by the ingress) → route → input guardrails →
/// rate limits → cache → budget reservation → dispatch → output guardrails → settle (budget, rate limits, cache store) →
/// trace. Each policy lives in its own folder and owns its acquire and settle steps; this class only sequences them, and
/// settles whatever was acquired however the call ends. The HTTP endpoints and in-process callers (the harness) run the
/// same pipeline through their own <see cref="IModelCallIngress"/>.
/// </summary>
internal sealed partial class ModelCallPipeline(
    FleetState fleet, BudgetStep budgets, CacheStep cache, TraceStep traces, TimeProvider time, ILogger<ModelCallPipeline> logger)
{
    /// <summary>Longest caller-supplied name (an unknown model) echoed in an error.</summary>
    private const int MaxEchoedName = 128;

    /// <summary>A call on the fleet version in force now, with its trace identity (a caller's <c>traceparent</c> when it sent one).</summary>
    public ModelCall Begin(CallKind kind, IHeaderDictionary? headers, IngressFormat ingress = IngressFormat.ChatCompletions)
    {
        var operation = ModelCall.OperationName(kind, ingress);
        var (activity, traceId) = CallTracing.StartCall(headers, operation);
        // One record per call: a caller that sends one traceparent for a whole run gets one trace id for all its calls, each
        // call its own record id.
        var recordId = headers?.ContainsKey("traceparent") == true
            ? $"{traceId}-{(activity?.SpanId.ToHexString() ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)))}"
            : traceId;
        return new ModelCall(fleet.Current, kind, ingress, traceId, recordId, activity, time.GetUtcNow(), time.GetTimestamp());
    }

    public async Task RunAsync(ModelCall call, IModelCallIngress ingress)
    {
        var aborted = ingress.Aborted;
        try
        {
            await ingress.AdmitAsync(call);
            var request = call.Request!;
            call.Route = ResolveRoute(call.Runtime, request.Model ?? call.Caller!.Agent.Model, call.Kind);
            if (request.NativeOnly is { } nativeOnly && !call.Route.Members.Any(m => m.Model.Provider.Config.Type == ProviderType.Anthropic))
            {
                throw GatewayException.BadRequest(ErrorCodes.Unsupported, $"{nativeOnly}; '{call.Route.Name}' has no Anthropic model to send it to.", "model");
            }

            await GuardrailSteps.InputAsync(call, aborted);
            Estimate(call);

            // Fleet policy, cheapest first: rate limits, then the cache (a hit costs nothing), then the budget.
            RateLimitStep.Acquire(call);
            if (await cache.LookupAsync(call, aborted) is { } hit)
            {
                ingress.Describe(call, hit.Model, 0, "hit");
                call.TtftMs = await ingress.WriteCachedAsync(call, hit);
                return;
            }

            budgets.Acquire(call, WorstCase);
            await DispatchAsync(call, ingress, aborted);
        }
        catch (GatewayException e)
        {
            call.Error = e;
            call.Status = e.Status;
            await ingress.WriteErrorAsync(call, e);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The caller went away; nothing to answer.
            call.Status = 499;
            call.Error = new GatewayException(499, "api_error", "client_closed", "the caller closed the connection");
        }
        catch (BadHttpRequestException e)
        {
            // The body broke off or was malformed on the wire (most often a caller that went away mid-request). Kestrel
            // answers it (400, connection closed) once we return; the trace records it, the log does not need a stack trace.
            call.Status = e.StatusCode;
            call.Error = GatewayException.BadRequest(ErrorCodes.InvalidRequest, "The request body could not be read: " + e.Message);
        }
        catch (Exception e)
        {
            LogUnexpected(logger, call.TraceId, e);
            call.Error = new GatewayException(500, "api_error", "internal_error", $"The gateway failed unexpectedly; the trace id is {call.TraceId}.");
            call.Status = 500;
            await ingress.WriteErrorAsync(call, call.Error);
        }
        finally
        {
            Price(call);
            budgets.Settle(call);
            RateLimitStep.Settle(call);
            await traces.FinishAsync(call);
        }
    }

    private async Task DispatchAsync(ModelCall call, IModelCallIngress ingress, CancellationToken aborted)
    {
        var runtime = call.Runtime;
        var route = call.Route!;
        using var deadline = new CancellationTokenSource(runtime.RequestTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(aborted, deadline.Token);
        try
        {
            var result = await runtime.Dispatcher.DispatchAsync(call.Kind, call.Request!, route, linked.Token);
            call.Result = result;
            await using var reply = result.Reply;
            ingress.Describe(call, result.Target?.Name, result.AttemptCount, call.CacheState);
            if (!reply.IsSuccess)
            {
                if (reply is { Outcome: AttemptOutcome.Status, Status: >= 400 and < 500 and not 429, Body: { } upstreamBody }
                    && !route.FallbackOn.Contains(reply.Status))
                {
                    // The caller's request was refused upstream: relay the upstream's answer, minus any credential it echoes.
                    call.Status = reply.Status;
                    call.Error = new GatewayException(reply.Status, "invalid_request_error", ErrorCodes.UpstreamError, reply.Error ?? "upstream refused the request");
                    await ingress.WriteAnswerAsync(call, reply.Status, SecretScrubber.ScrubBytes(upstreamBody));
                    return;
                }

                throw CallDispatcher.ToCallerError(result, route);
            }

            if (reply.Stream is { } upstreamStream)
            {
                var stream = await GuardrailSteps.GuardStreamAsync(call, upstreamStream, linked.Token);
                var assembler = call.CacheKey is not null ? new CompletionAssembler() : null;
                var (ttft, error) = await ingress.RelayStreamAsync(call, stream, assembler, deadline, linked.Token);
                call.TtftMs = ttft;
                call.Error = error;
                call.Usage = stream.Usage;
                GuardrailSteps.SettleStream(call, stream);
                if (error is null && assembler?.Build(result.Target!.Name, call.Usage, time.GetUtcNow().ToUnixTimeSeconds()) is { } assembled)
                {
                    cache.Store(call, assembled, result.Target!.Name);
                }
            }
            else
            {
                call.Usage = reply.Usage;
                var answer = await GuardrailSteps.OutputAsync(call, reply.Body!, aborted);
                await ingress.WriteAnswerAsync(call, 200, answer);
                call.TtftMs = time.GetElapsedTime(call.Start).TotalMilliseconds;
                cache.Store(call, answer, result.Target!.Name);
            }

            fleet.Health.RecordLatency(result.Target!.Name, time.GetElapsedTime(call.Start).TotalMilliseconds, call.Usage.OutputTokens);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !aborted.IsCancellationRequested)
        {
            throw new GatewayException(504, "api_error", ErrorCodes.UpstreamTimeout,
                $"The request did not finish within {runtime.RequestTimeout.TotalMilliseconds:0} ms (gateway.routing.request_timeout_ms).");
        }
    }

    /// <summary>What a budget reserves: the estimate priced at the dearest target the route may use.</summary>
    private static decimal WorstCase(GovernedCall governed)
    {
        var call = (ModelCall)governed;
        return call.Route!.Members.Max(m => m.Model.Config.Price.Cost(call.EstimatedInputTokens, call.MaxOutputTokens));
    }

    /// <summary>
    /// Only budgets and token rate limits need token estimates. They start from the cheap upper bound; a policy that would
    /// refuse on it asks for the tokenizer's count (<see cref="ModelCall.RefineEstimate"/>), so a call far from every limit
    /// never pays for the tokenizer.
    /// </summary>
    private static void Estimate(ModelCall call)
    {
        if (!call.Runtime.NeedsTokenEstimate)
        {
            return;
        }

        var request = call.Request!;
        call.EstimateInput(TokenEstimator.UpperBound(request), upperBound: true);
        call.MaxOutputTokens = call.Kind == CallKind.Chat ? TokenEstimator.MaxOutput(request) : 0;
    }

    /// <summary>What the call cost: nothing for a cache hit or no answer; a stream cut off before its usage chunk is charged its estimated prompt.</summary>
    private static void Price(ModelCall call)
    {
        var answered = call.Result?.Target;
        if (answered is null || call.CacheState == "hit")
        {
            return;
        }

        if (call.Result!.Reply.IsSuccess && call.Usage.InputTokens == 0 && call.EstimatedInputTokens > 0)
        {
            call.Usage = new TokenUsage(call.ExactInputTokens(), call.Usage.OutputTokens);
        }

        call.CostUsd = answered.Config.Price.Cost(call.Usage.InputTokens, call.Usage.OutputTokens);
    }

    private static Route ResolveRoute(GatewayRuntime runtime, string? model, CallKind kind)
    {
        Route? route;
        if (model is null)
        {
            route = runtime.Routes.Default ?? throw GatewayException.BadRequest(ErrorCodes.InvalidRequest,
                "'model' is required: this agent declares no model and the fleet has no gateway.routing.virtual_model default.", "model");
        }
        else if (!runtime.Routes.TryGet(model, out route))
        {
            var known = string.Join(", ", runtime.Routes.All.Where(r => r.Kind == (kind == CallKind.Chat ? ModelKind.Chat : ModelKind.Embedding))
                .Select(r => r.Name).Order(StringComparer.Ordinal).Take(20));
            throw new GatewayException(404, "invalid_request_error", ErrorCodes.ModelNotFound,
                $"The model '{DisplayText.Safe(model, MaxEchoedName)}' does not exist in this fleet. Use one of: {known} (GET /v1/models lists them).", "model");
        }

        var wanted = kind == CallKind.Chat ? ModelKind.Chat : ModelKind.Embedding;
        if (route.Kind != wanted)
        {
            throw GatewayException.BadRequest(ErrorCodes.InvalidRequest,
                $"'{route.Name}' is a{(route.Kind == ModelKind.Embedding ? "n embedding" : " chat")} model; this endpoint needs a{(wanted == ModelKind.Embedding ? "n embedding" : " chat")} model.", "model");
        }

        return route;
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure handling trace {TraceId}")]
    private static partial void LogUnexpected(ILogger logger, string traceId, Exception exception);
}
