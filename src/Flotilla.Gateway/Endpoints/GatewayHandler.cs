using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Alerts;
using Flotilla.Gateway.Budgets;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Guardrails;
using Flotilla.Guardrails;
using Flotilla.Gateway.Identity;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.RateLimiting;
using Flotilla.Gateway.Routing;
using Flotilla.Gateway.Telemetry;
using Flotilla.Gateway.Traces;
using Flotilla.Storage.Traces;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Endpoints;

/// <summary>
/// The OpenAI-compatible request path: authenticate the agent, read and check the body, route, dispatch, relay the
/// answer (as it came, or as a stream), and leave one trace. Every error is OpenAI error JSON.
/// </summary>
internal sealed partial class GatewayHandler(
    FleetState fleet, AgentKeyRing keys, TraceWriter traces, AlertDispatcher alerts, GatewayMetrics metrics, TimeProvider time, ILogger<GatewayHandler> logger)
{
    public const string TraceIdHeader = "X-Flotilla-Trace-Id";
    public const string TargetHeader = "X-Flotilla-Target";
    public const string AttemptsHeader = "X-Flotilla-Attempts";
    public const string MetadataHeader = "X-Flotilla-Metadata";
    public const string CacheHeader = "X-Flotilla-Cache";
    public const string CacheControlHeader = "X-Flotilla-Cache-Control";

    /// <summary>Longest caller-supplied name (an unknown model) echoed in an error or kept in a trace.</summary>
    private const int MaxEchoedName = 128;

    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] DoneEvent = "data: [DONE]\n\n"u8.ToArray();

    public Task ChatAsync(HttpContext context) => HandleAsync(context, CallKind.Chat);

    public Task EmbeddingsAsync(HttpContext context) => HandleAsync(context, CallKind.Embeddings);

    public async Task ModelsAsync(HttpContext context)
    {
        var runtime = fleet.Current;
        try
        {
            Authenticate(context, runtime);
        }
        catch (GatewayException e)
        {
            await ErrorWriter.WriteAsync(context, e);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteStartArray("data");
            foreach (var route in runtime.Routes.All.OrderBy(r => r.IsVirtual ? 0 : 1).ThenBy(r => r.Name, StringComparer.Ordinal))
            {
                writer.WriteStartObject();
                writer.WriteString("id", route.Name);
                writer.WriteString("object", "model");
                writer.WriteNumber("created", 0);
                writer.WriteString("owned_by", route.IsVirtual ? "flotilla" : route.Members[0].Model.Provider.Config.Name);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        context.Response.ContentType = "application/json";
        await context.Response.BodyWriter.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

    private async Task HandleAsync(HttpContext context, CallKind kind)
    {
        var runtime = fleet.Current;
        var startedAt = time.GetUtcNow();
        var start = time.GetTimestamp();
        var operation = kind == CallKind.Chat ? "chat" : "embeddings";
        var (activity, traceId) = GatewayActivity.StartCall(context, operation);
        // One record per call: a caller that sends one traceparent for a whole run gets one trace id for all its calls, each
        // call its own record id.
        var recordId = context.Request.Headers.ContainsKey("traceparent")
            ? $"{traceId}-{(activity?.SpanId.ToHexString() ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)))}"
            : traceId;
        var response = context.Response;
        response.Headers[TraceIdHeader] = traceId;

        CallerIdentity? caller = null;
        IReadOnlyDictionary<string, string>? metadata = null;
        ChatRequest? request = null;
        Route? route = null;
        DispatchResult? result = null;
        GatewayException? error = null;
        TokenUsage usage = default;
        double? ttftMs = null;
        var status = 200;
        RateLimitDecision? rate = null;
        BudgetDecision? budget = null;
        CacheEntryKey? cacheKey = null;
        string? cacheState = null;
        List<string>? policyNotes = null;
        List<TraceVerdict>? verdicts = null;
        long estimatedTokens = 0, estimatedInput = 0;
        try
        {
            caller = Authenticate(context, runtime);
            metadata = ReadMetadata(context);
            var body = await ReadBodyAsync(context, runtime.MaxRequestBodyBytes);
            request = kind == CallKind.Chat ? ChatRequest.ParseChat(body) : ChatRequest.ParseEmbeddings(body);
            route = ResolveRoute(runtime, request.Model ?? caller.Agent.Model, kind);

            var guardContext = new GuardrailContext(caller.Agent.Name, caller.Agent.Owner);
            if (kind == CallKind.Chat && !runtime.Guardrails[GuardrailHook.LlmInput].IsEmpty)
            {
                // Input guardrails first: a blocked call costs nothing, and the cache keys on what the model would see.
                var (texts, slots) = ModelTexts.FromRequest(request.Document);
                var outcome = await runtime.Guardrails.RunAsync(GuardrailHook.LlmInput, texts, guardContext, context.RequestAborted);
                AddVerdicts(ref verdicts, "llm_input", outcome.Verdicts);
                if (outcome.IsBlocked)
                {
                    throw GuardrailError("llm_input", outcome);
                }

                if (outcome.Decision == GuardrailDecision.Redacted)
                {
                    request = ChatRequest.ParseChat(ModelTexts.Apply(request.Body, slots, outcome.Texts, completion: false));
                }
            }

            // Fleet policy, cheapest first: rate limits, then the cache (a hit costs nothing), then the budget.
            var subject = new CallSubject(caller.Agent.Name, caller.Agent.Owner, route.Name, metadata);
            long maxOutput = 0;
            if (runtime.NeedsTokenEstimate)
            {
                estimatedInput = TokenEstimator.EstimateInput(request);
                maxOutput = kind == CallKind.Chat ? TokenEstimator.MaxOutput(request) : 0;
                estimatedTokens = estimatedInput + (request.MaxTokens ?? 0);
            }

            rate = runtime.RateLimits.TryAcquire(subject, estimatedTokens);
            if (!rate.IsAllowed)
            {
                throw new GatewayException(429, "rate_limit_error", ErrorCodes.RateLimited, rate.Reason!)
                {
                    RetryAfterSeconds = (int)Math.Ceiling(rate.RetryAfter.TotalSeconds),
                };
            }

            if (runtime.Cache is { } cache && kind == CallKind.Chat)
            {
                var mode = ReadCacheControl(context);
                if (mode != CacheControl.NoStore)
                {
                    cacheKey = await CacheKeyAsync(runtime, cache, caller, route, request, context.RequestAborted);
                    if (mode != CacheControl.NoCache && Lookup(cache, cacheKey) is { } hit)
                    {
                        cacheState = "hit";
                        response.Headers[CacheHeader] = "hit";
                        response.Headers[TargetHeader] = hit.Model;
                        response.Headers[AttemptsHeader] = "0";
                        ttftMs = await WriteCachedAsync(context, hit, request, start);
                        return;
                    }

                    cacheState = "miss";
                    response.Headers[CacheHeader] = "miss";
                }
            }

            if (runtime.Budgets.Rules.Count > 0)
            {
                var worstCase = route.Members.Max(m => m.Model.Config.Price.Cost(estimatedInput, maxOutput));
                budget = runtime.Budgets.TryReserve(subject, worstCase);
                foreach (var note in budget.AuditNotes ?? [])
                {
                    (policyNotes ??= []).Add("budget audit: would have refused: " + note);
                }

                foreach (var note in budget.AuditAlerts ?? [])
                {
                    alerts.PublishWouldBlock(note, caller.Agent.Name);
                }

                if (!budget.IsAllowed)
                {
                    foreach (var alert in budget.Alerts)
                    {
                        alerts.Publish(alert);
                        (policyNotes ??= []).Add($"budget alert: {alert.Rule.AppliesPer} '{alert.Key}' reached {alert.Threshold}%");
                    }

                    var wait = budget.ResetsAt!.Value - time.GetUtcNow();
                    throw new GatewayException(429, "rate_limit_error", ErrorCodes.BudgetExceeded, budget.Reason!)
                    {
                        RetryAfterSeconds = (int)Math.Max(1, Math.Ceiling(wait.TotalSeconds)),
                    };
                }
            }

            using var deadline = new CancellationTokenSource(runtime.RequestTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, deadline.Token);
            try
            {
                result = await runtime.Dispatcher.DispatchAsync(kind, request, route, linked.Token);
                await using var reply = result.Reply;
                response.Headers[AttemptsHeader] = result.AttemptCount.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (result.Target is { } target)
                {
                    response.Headers[TargetHeader] = target.Name;
                }

                if (!reply.IsSuccess)
                {
                    if (reply is { Outcome: AttemptOutcome.Status, Status: >= 400 and < 500 and not 429, Body: { } upstreamBody }
                        && !route.FallbackOn.Contains(reply.Status))
                    {
                        // The caller's request was refused upstream: relay the upstream's answer, minus any credential it echoes.
                        status = reply.Status;
                        error = new GatewayException(reply.Status, "invalid_request_error", ErrorCodes.UpstreamError, reply.Error ?? "upstream refused the request");
                        response.StatusCode = reply.Status;
                        response.ContentType = "application/json";
                        await response.BodyWriter.WriteAsync(SecretScrubber.ScrubBytes(upstreamBody), context.RequestAborted);
                        return;
                    }

                    throw CallDispatcher.ToCallerError(result, route);
                }

                var outputGuard = runtime.Guardrails[GuardrailHook.LlmOutput];
                if (reply.Stream is { } upstreamStream)
                {
                    var stream = upstreamStream;
                    if (!outputGuard.IsEmpty && kind == CallKind.Chat)
                    {
                        // The guarded stream starts from the chunk the dispatcher already read; read it through the guard first.
                        stream = new GuardedChunkStream(upstreamStream, outputGuard.CreateStreamingGuard(guardContext));
                        try
                        {
                            if (!await stream.ReadAsync(linked.Token))
                            {
                                throw new GatewayException(502, "api_error", ErrorCodes.StreamBroken, "The answer stream ended before its first chunk.");
                            }
                        }
                        catch (GuardrailBlockedException e)
                        {
                            throw new GatewayException(400, "invalid_request_error", ErrorCodes.GuardrailBlocked, $"The answer was stopped by an output guardrail: {e.Message}");
                        }
                    }

                    var assembler = cacheKey is not null ? new CompletionAssembler() : null;
                    (ttftMs, error) = await RelayStreamAsync(context, stream, start, deadline, assembler, linked.Token);
                    usage = stream.Usage;
                    if (stream is GuardedChunkStream guarded)
                    {
                        AddVerdicts(ref verdicts, "llm_output", guarded.Guard.Verdicts);
                    }

                    if (error is null && assembler?.Build(result.Target!.Name, usage, time.GetUtcNow().ToUnixTimeSeconds()) is { } assembled)
                    {
                        Store(runtime.Cache!, cacheKey!, assembled, result.Target!.Name, usage);
                    }
                }
                else
                {
                    usage = reply.Usage;
                    var answer = reply.Body!;
                    if (kind == CallKind.Chat && !outputGuard.IsEmpty)
                    {
                        var (texts, slots) = ModelTexts.FromCompletion(answer);
                        var outcome = await runtime.Guardrails.RunAsync(GuardrailHook.LlmOutput, texts, guardContext, context.RequestAborted);
                        AddVerdicts(ref verdicts, "llm_output", outcome.Verdicts);
                        if (outcome.IsBlocked)
                        {
                            throw GuardrailError("llm_output", outcome);
                        }

                        if (outcome.Decision == GuardrailDecision.Redacted)
                        {
                            answer = ModelTexts.Apply(answer, slots, outcome.Texts, completion: true);
                        }
                    }

                    response.ContentType = "application/json";
                    response.ContentLength = answer.Length;
                    await response.BodyWriter.WriteAsync(answer, context.RequestAborted);
                    ttftMs = time.GetElapsedTime(start).TotalMilliseconds;
                    if (cacheKey is not null)
                    {
                        Store(runtime.Cache!, cacheKey, answer, result.Target!.Name, usage);
                    }
                }

                fleet.Health.RecordLatency(result.Target!.Name, time.GetElapsedTime(start).TotalMilliseconds, usage.OutputTokens);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
            {
                throw new GatewayException(504, "api_error", ErrorCodes.UpstreamTimeout,
                    $"The request did not finish within {runtime.RequestTimeout.TotalMilliseconds:0} ms (gateway.routing.request_timeout_ms).");
            }
        }
        catch (GatewayException e)
        {
            error = e;
            status = e.Status;
            await ErrorWriter.WriteAsync(context, e);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The caller went away; nothing to answer.
            status = 499;
            error = new GatewayException(499, "api_error", "client_closed", "the caller closed the connection");
        }
        catch (Exception e)
        {
            LogUnexpected(logger, traceId, e);
            error = new GatewayException(500, "api_error", "internal_error", $"The gateway failed unexpectedly; the trace id is {traceId}.");
            status = 500;
            await ErrorWriter.WriteAsync(context, error);
        }
        finally
        {
            var answered = result?.Target;
            if (answered is not null && result!.Reply.IsSuccess && usage.InputTokens == 0 && estimatedInput > 0)
            {
                // A stream that broke or was cut off before its usage chunk still cost its prompt: charge the estimate.
                usage = new TokenUsage(estimatedInput, usage.OutputTokens);
            }

            var cost = answered is null || cacheState == "hit" ? 0m : answered.Config.Price.Cost(usage.InputTokens, usage.OutputTokens);
            if (budget is not null)
            {
                // Always settle: a failed call releases its reservation; spend counts what was actually used.
                foreach (var alert in runtime.Budgets.Settle(budget, cost))
                {
                    alerts.Publish(alert);
                    (policyNotes ??= []).Add($"budget alert: {alert.Rule.AppliesPer} '{alert.Key}' reached {alert.Threshold}%");
                }
            }

            if (rate is not null)
            {
                runtime.RateLimits.Reconcile(rate, estimatedTokens, cacheState == "hit" ? 0 : usage.Total);
            }

            TraceRecord? record = null;
            if (caller is not null)
            {
                var target = result?.Target;
                var succeeded = error is null && result?.Reply.IsSuccess == true;
                record = new TraceRecord
                {
                    Id = recordId,
                    TraceId = traceId,
                    Kind = TraceKinds.ModelCall,
                    StartedAt = startedAt,
                    Operation = operation,
                    Agent = caller.Agent.Name,
                    Team = caller.Agent.Owner,
                    Metadata = metadata,
                    // An unknown model name is the caller's text: bounded and made safe before it is stored.
                    RequestedModel = route?.Name ?? DisplayText.SafeOrNull(request?.Model, MaxEchoedName),
                    FinalTarget = succeeded ? target?.Name : cacheState == "hit" ? response.Headers[TargetHeader].ToString() : null,
                    Stream = request?.Stream ?? false,
                    FellBack = result?.FellBack ?? false,
                    Attempts = result?.Attempts ?? [],
                    Status = error?.Status ?? status,
                    InputTokens = usage.InputTokens,
                    OutputTokens = usage.OutputTokens,
                    CostUsd = cost,
                    TtftMs = ttftMs is { } t ? Math.Round(t, 3) : null,
                    LatencyMs = Math.Round(time.GetElapsedTime(start).TotalMilliseconds, 3),
                    ErrorCode = error?.Code,
                    Error = SecretScrubber.Scrub(error?.Message),
                    Cache = cacheState,
                    Policy = policyNotes,
                    Guardrails = verdicts,
                };
                await traces.EnqueueAsync(record);
                metrics.Record(record, route?.Name);
                if (record.FellBack)
                {
                    LogFellBack(logger, route?.Name ?? "", record.FinalTarget ?? "", record.Attempts.Count, record.Id);
                }
            }

            if (activity is not null)
            {
                Describe(activity, operation, route?.Name, record, error);
                activity.Dispose();
            }
        }
    }

    /// <summary>The call's span gets the GenAI attributes of its outcome; never a key, a prompt or a tag value.</summary>
    private static void Describe(System.Diagnostics.Activity activity, string operation, string? model, TraceRecord? record, GatewayException? error)
    {
        if (activity.Source.Name != GatewayActivity.SourceName)
        {
            return;
        }

        activity.DisplayName = model is null ? operation : $"{operation} {model}";
        activity.SetTag("gen_ai.request.model", model);
        if (record is not null)
        {
            activity.SetTag("gen_ai.response.model", record.FinalTarget);
            activity.SetTag("gen_ai.usage.input_tokens", record.InputTokens);
            activity.SetTag("gen_ai.usage.output_tokens", record.OutputTokens);
            activity.SetTag("flotilla.agent", record.Agent);
            activity.SetTag("flotilla.team", record.Team);
            activity.SetTag("flotilla.cost_usd", (double)record.CostUsd);
            activity.SetTag("flotilla.fell_back", record.FellBack);
            activity.SetTag("flotilla.attempts", record.Attempts.Count);
            activity.SetTag("flotilla.record_id", record.Id);
        }

        if (error is not null)
        {
            activity.SetTag("error.type", error.Code);
            activity.SetStatus(System.Diagnostics.ActivityStatusCode.Error, error.Code);
        }
    }

    /// <summary>Writes the primed first chunk, then the rest; a break midway ends the stream with an error event.</summary>
    private async Task<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(
        HttpContext context, IChunkStream stream, long start, CancellationTokenSource deadline, CompletionAssembler? assembler, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var writer = response.BodyWriter;
        WriteEvent(writer, stream.Current.Span);
        assembler?.Add(stream.Current.Span);
        await writer.FlushAsync(cancellationToken);
        var ttft = time.GetElapsedTime(start).TotalMilliseconds;
        try
        {
            while (await stream.ReadAsync(cancellationToken))
            {
                WriteEvent(writer, stream.Current.Span);
                assembler?.Add(stream.Current.Span);
                await writer.FlushAsync(cancellationToken);
            }

            await writer.WriteAsync(DoneEvent, cancellationToken);
            return (ttft, null);
        }
        catch (GuardrailBlockedException e)
        {
            var error = new GatewayException(400, "invalid_request_error", ErrorCodes.GuardrailBlocked, $"The answer was stopped by an output guardrail: {e.Message}");
            await writer.WriteAsync(ErrorWriter.ToSseEvent(error.Message, error.Type, error.Code), CancellationToken.None);
            return (ttft, error);
        }
        catch (StreamBrokenException e)
        {
            var error = new GatewayException(502, "api_error", ErrorCodes.StreamBroken, $"The answer stopped midway: {e.Message}.");
            await writer.WriteAsync(ErrorWriter.ToSseEvent(error.Message, error.Type, error.Code), CancellationToken.None);
            return (ttft, error);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !context.RequestAborted.IsCancellationRequested)
        {
            var error = new GatewayException(504, "api_error", ErrorCodes.UpstreamTimeout, "The stream did not finish within the request timeout.");
            await writer.WriteAsync(ErrorWriter.ToSseEvent(error.Message, error.Type, error.Code), CancellationToken.None);
            return (ttft, error);
        }
    }

    private static void WriteEvent(PipeWriter writer, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(payload.Length + 8);
        DataPrefix.CopyTo(span);
        payload.CopyTo(span[6..]);
        span[6 + payload.Length] = (byte)'\n';
        span[7 + payload.Length] = (byte)'\n';
        writer.Advance(payload.Length + 8);
    }

    internal CallerIdentity Authenticate(HttpContext context, GatewayRuntime runtime)
    {
        var header = context.Request.Headers.Authorization;
        if (header.Count == 0)
        {
            throw new GatewayException(401, "authentication_error", ErrorCodes.MissingKey,
                "Missing agent key. Send 'Authorization: Bearer <agent key>'; an admin issues keys with POST /api/keys {\"agent\":\"NAME\"}.");
        }

        var value = header[0].AsSpan();
        if (!value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            throw new GatewayException(401, "authentication_error", ErrorCodes.InvalidKey, "The Authorization header must be 'Bearer <agent key>'.");
        }

        if (!keys.TryResolve(value[7..].Trim(), out var record))
        {
            throw new GatewayException(401, "authentication_error", ErrorCodes.InvalidKey, "The agent key is not valid (unknown or revoked).");
        }

        if (!runtime.Agents.TryGetValue(record.Agent, out var agent))
        {
            // The key is kept: re-adding the agent to the fleet makes it work again.
            throw new GatewayException(401, "authentication_error", ErrorCodes.InvalidKey,
                $"The key belongs to agent '{record.Agent}', which left the fleet (revision {runtime.Revision}); it works again if the agent is added back.");
        }

        return new CallerIdentity(agent, record.Id);
    }

    private static IReadOnlyDictionary<string, string>? ReadMetadata(HttpContext context)
    {
        var header = context.Request.Headers[MetadataHeader];
        if (header.Count == 0 || string.IsNullOrWhiteSpace(header[0]))
        {
            return null;
        }

        const string Rule = "X-Flotilla-Metadata must be a JSON object of strings, e.g. {\"loop\":\"triage\",\"run\":\"42\"} " +
            "(at most 32 keys of up to 64 characters, values up to 256 characters, no control characters).";
        try
        {
            using var document = JsonDocument.Parse(header[0]!);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, Rule);
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String || property.Name.Length is 0 or > 64 || result.Count >= 32)
                {
                    throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, Rule);
                }

                var value = property.Value.GetString()!;
                if (value.Length > 256)
                {
                    throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, Rule);
                }

                // Tags are stored, rolled up and shown to operators: a CR/LF or an escape sequence has no business in one.
                if (DisplayText.HasUnsafe(property.Name) || DisplayText.HasUnsafe(value))
                {
                    throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata,
                        $"X-Flotilla-Metadata key '{DisplayText.Safe(property.Name, 64)}' has a control character; keys and values are plain text. " + Rule);
                }

                result[property.Name] = value;
            }

            return result;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that cannot be decoded (an unpaired surrogate escape).
            throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, Rule);
        }
    }

    private static async Task<byte[]> ReadBodyAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        if (request.ContentLength is { } declared && declared > limit)
        {
            AllowDrain(context, declared);
            throw new GatewayException(413, "invalid_request_error", ErrorCodes.BodyTooLarge,
                $"The request body is {declared} bytes; the limit is {limit} (gateway.limits.max_request_body_bytes).");
        }

        var reader = request.BodyReader;
        try
        {
            while (true)
            {
                var read = await reader.ReadAsync(context.RequestAborted);
                if (read.Buffer.Length > limit)
                {
                    reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                    throw new GatewayException(413, "invalid_request_error", ErrorCodes.BodyTooLarge,
                        $"The request body is over the limit of {limit} bytes (gateway.limits.max_request_body_bytes).");
                }

                if (read.IsCompleted)
                {
                    var body = read.Buffer.ToArray();
                    reader.AdvanceTo(read.Buffer.End);
                    if (body.Length == 0)
                    {
                        throw GatewayException.BadRequest(ErrorCodes.InvalidJson, "The request body is empty; send a JSON object.");
                    }

                    return body;
                }

                reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new GatewayException(413, "invalid_request_error", ErrorCodes.BodyTooLarge,
                $"The request body is over the limit of {limit} bytes (gateway.limits.max_request_body_bytes).");
        }
    }

    /// <summary>
    /// After the 413, Kestrel reads and discards the unread body so that the caller, possibly still sending it, receives the
    /// answer instead of a reset connection; its backstop limit would refuse that, so it is raised for this request, within a bound.
    /// </summary>
    private static void AllowDrain(HttpContext context, long declared)
    {
        const long MaxDrainBytes = 16 * 1024 * 1024;
        if (declared <= MaxDrainBytes && context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = declared;
        }
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

    private static GatewayException GuardrailError(string hook, GuardrailOutcome outcome) =>
        new(400, "invalid_request_error", ErrorCodes.GuardrailBlocked,
            outcome.Reason ?? $"Blocked by guardrail '{outcome.BlockedBy?.Name}' on {hook}.");

    private static void AddVerdicts(ref List<TraceVerdict>? verdicts, string hook, IReadOnlyList<GuardrailVerdict> found)
    {
        foreach (var v in found)
        {
            (verdicts ??= []).Add(new TraceVerdict(hook, v.Name, v.Action.ToString().ToLowerInvariant(), v.Effect switch
            {
                GuardrailEffect.Blocked => "blocked",
                GuardrailEffect.Redacted => "redacted",
                GuardrailEffect.Audited => "flagged",
                GuardrailEffect.FailedOpen => "failed_open",
                GuardrailEffect.Skipped => "skipped",
                _ => "passed",
            }, v.Findings is { Count: > 0 } findings ? string.Join(", ", findings.Select(f => $"{f.Kind}×{f.Count}")) : v.Note,
            v.Score is { } score ? Math.Round(score, 3) : null));
        }
    }

    private enum CacheControl { Default, NoCache, NoStore }

    /// <summary><c>X-Flotilla-Cache-Control: no-store</c> opts out; <c>no-cache</c> skips the lookup but stores the fresh answer.</summary>
    private static CacheControl ReadCacheControl(HttpContext context) =>
        context.Request.Headers[CacheControlHeader].ToString().Trim().ToLowerInvariant() switch
        {
            "no-store" => CacheControl.NoStore,
            "no-cache" or "refresh" => CacheControl.NoCache,
            _ => CacheControl.Default,
        };

    private sealed record CacheEntryKey(string Space, ulong Hash, float[]? Vector);

    private async Task<CacheEntryKey> CacheKeyAsync(GatewayRuntime runtime, IResponseCache cache, CallerIdentity caller, Route route, ChatRequest request, CancellationToken cancellationToken)
    {
        var config = cache.Config;
        var space = config.NamespacePer switch
        {
            CacheNamespace.Agent => "agent:" + caller.Agent.Name,
            CacheNamespace.Team => "team:" + caller.Agent.Owner,
            _ => "shared",
        };
        var hash = ResponseCache.ExactKey(route.Name, request.Document);
        float[]? vector = null;
        if (config.Type == CacheType.Semantic)
        {
            // Similar conversations answer each other only under the same model and parameters (tools, temperature, ...).
            space += "|" + ResponseCache.ParametersKey(route.Name, request.Document).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
            // The conversation is embedded with the configured model, or locally when none is configured.
            var text = route.Name + "\n" + ResponseCache.ConversationText(request.Document);
            vector = config.EmbeddingModel is { } model && runtime.Routes.TryGet(model, out var embeddingRoute)
                ? await EmbedAsync(runtime, embeddingRoute, text, cancellationToken)
                : Providers.Simulated.SimulatedProvider.Embed(text, ResponseCache.IndexDimensions);
            vector = vector is null ? null : ResponseCache.Project(vector);
        }

        return new CacheEntryKey(space, hash, vector);
    }

    private static async Task<float[]?> EmbedAsync(GatewayRuntime runtime, Route route, string text, CancellationToken cancellationToken)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new EmbeddingProbe(route.Name, text), GatewayJsonContext.Default.EmbeddingProbe));
        var result = await runtime.Dispatcher.DispatchAsync(CallKind.Embeddings, ChatRequest.ParseEmbeddings(body), route, cancellationToken);
        await using var reply = result.Reply;
        if (!reply.IsSuccess || reply.Body is null)
        {
            return null; // No vector: the call goes ahead uncached rather than fail.
        }

        using var document = JsonDocument.Parse(reply.Body);
        var embedding = document.RootElement.GetProperty("data")[0].GetProperty("embedding");
        if (embedding.ValueKind == JsonValueKind.String)
        {
            var bytes = embedding.GetBytesFromBase64();
            var floats = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, floats, 0, floats.Length * 4);
            return floats;
        }

        return embedding.EnumerateArray().Select(e => e.GetSingle()).ToArray();
    }

    private static CachedAnswer? Lookup(IResponseCache cache, CacheEntryKey key) =>
        cache.GetExact(key.Space, key.Hash) ?? (key.Vector is { } vector ? cache.GetSimilar(key.Space, vector) : null);

    private void Store(IResponseCache cache, CacheEntryKey key, byte[] completion, string model, TokenUsage usage)
    {
        if (!cache.Config.CacheToolCalls && completion.AsSpan().IndexOf("\"tool_calls\""u8) >= 0)
        {
            return;
        }

        cache.Put(key.Space, key.Hash, key.Vector, new CachedAnswer(completion, model, usage, time.GetUtcNow()));
    }

    /// <summary>Answers from the cache, as JSON or replayed as a stream.</summary>
    private async Task<double> WriteCachedAsync(HttpContext context, CachedAnswer hit, ChatRequest request, long start)
    {
        var response = context.Response;
        if (!request.Stream)
        {
            response.ContentType = "application/json";
            response.ContentLength = hit.Completion.Length;
            await response.BodyWriter.WriteAsync(hit.Completion, context.RequestAborted);
            return time.GetElapsedTime(start).TotalMilliseconds;
        }

        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var writer = response.BodyWriter;
        double? ttft = null;
        foreach (var chunk in CachedReplay.ToChunks(hit.Completion, request.IncludeUsage))
        {
            WriteEvent(writer, chunk);
            await writer.FlushAsync(context.RequestAborted);
            ttft ??= time.GetElapsedTime(start).TotalMilliseconds;
        }

        await writer.WriteAsync(DoneEvent, context.RequestAborted);
        return ttft ?? 0;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Model} fell back: answered by {Target} after {Attempts} attempt(s) (trace record {RecordId})")]
    private static partial void LogFellBack(ILogger logger, string model, string target, int attempts, string recordId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Unexpected failure handling trace {TraceId}")]
    private static partial void LogUnexpected(ILogger logger, string traceId, Exception exception);
}

/// <summary>Who is calling: the registered agent behind the presented key.</summary>
internal sealed record CallerIdentity(AgentConfig Agent, string KeyId);
