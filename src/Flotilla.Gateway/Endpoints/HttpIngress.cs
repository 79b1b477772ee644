using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Caching;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Guardrails;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Flotilla.Gateway.Endpoints;

/// <summary>
/// The OpenAI-compatible HTTP side of a governed call: admits it (agent key, tags, body read within the size limit and
/// scanned once), and writes what the pipeline hands back as JSON or server-sent events, with the Flotilla response
/// headers. Every error is OpenAI error JSON.
/// </summary>
internal sealed class HttpIngress(HttpContext context, AgentKeyRing keys, TimeProvider time) : IModelCallIngress
{
    public const string TraceIdHeader = "X-Flotilla-Trace-Id";
    public const string TargetHeader = "X-Flotilla-Target";
    public const string AttemptsHeader = "X-Flotilla-Attempts";
    public const string MetadataHeader = "X-Flotilla-Metadata";
    public const string CacheHeader = "X-Flotilla-Cache";
    public const string CacheControlHeader = "X-Flotilla-Cache-Control";

    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] DoneEvent = "data: [DONE]\n\n"u8.ToArray();

    public CancellationToken Aborted => context.RequestAborted;

    public async ValueTask AdmitAsync(ModelCall call)
    {
        context.Response.Headers[TraceIdHeader] = call.TraceId;
        call.Caller = Authenticate(context, call.Runtime, keys);
        call.Metadata = ReadMetadata(context);
        var body = await ReadBodyAsync(context, call.Runtime.MaxRequestBodyBytes);
        call.Request = call.Kind == CallKind.Chat ? ChatRequest.ParseChat(body) : ChatRequest.ParseEmbeddings(body);
        call.CacheControl = ReadCacheControl(context);
    }

    internal static CacheControl ReadCacheControl(HttpContext context) =>
        context.Request.Headers[CacheControlHeader].ToString().Trim().ToLowerInvariant() switch
        {
            "no-store" => CacheControl.NoStore,
            "no-cache" or "refresh" => CacheControl.NoCache,
            _ => CacheControl.Default,
        };

    public void Describe(ModelCall call, string? target, int attempts, string? cache) => Describe(context, target, attempts, cache);

    /// <summary>The Flotilla response headers: which target answered, after how many attempts, and the cache's verdict.</summary>
    internal static void Describe(HttpContext context, string? target, int attempts, string? cache)
    {
        var headers = context.Response.Headers;
        headers[AttemptsHeader] = attempts.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (target is not null)
        {
            headers[TargetHeader] = target;
        }

        if (cache is not null)
        {
            headers[CacheHeader] = cache;
        }
    }

    public async ValueTask WriteAnswerAsync(ModelCall call, int status, ReadOnlyMemory<byte> body)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = body.Length;
        await response.BodyWriter.WriteAsync(body, context.RequestAborted);
    }

    public async ValueTask WriteErrorAsync(ModelCall call, GatewayException error) => await ErrorWriter.WriteAsync(context, error);

    /// <summary>Writes the primed first chunk, then the rest; a break midway ends the stream with an error event.</summary>
    public async ValueTask<(double? TtftMs, GatewayException? Error)> RelayStreamAsync(
        ModelCall call, IChunkStream stream, CompletionAssembler? assembler, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        var start = call.Start;
        var writer = StartEventStream(context);
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
            var error = GuardrailSteps.StreamBlocked(e);
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

    /// <summary>Starts a 200 server-sent-event answer, unbuffered, and returns its writer.</summary>
    internal static PipeWriter StartEventStream(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        return response.BodyWriter;
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

    /// <summary>Answers from the cache, as JSON or replayed as a stream.</summary>
    public async ValueTask<double> WriteCachedAsync(ModelCall call, CachedAnswer hit)
    {
        var request = call.Request!;
        var start = call.Start;
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

    /// <summary>
    /// The agent behind the call's key: <c>Authorization: Bearer</c>, or (with <paramref name="acceptApiKeyHeader"/>, as
    /// Anthropic clients send it) <c>x-api-key</c>.
    /// </summary>
    public static CallerIdentity Authenticate(HttpContext context, GatewayRuntime runtime, AgentKeyRing keys, bool acceptApiKeyHeader = false)
    {
        var header = context.Request.Headers.Authorization;
        ReadOnlySpan<char> key;
        if (header.Count == 0 && acceptApiKeyHeader && context.Request.Headers["x-api-key"] is { Count: > 0 } apiKey)
        {
            key = apiKey[0].AsSpan().Trim();
        }
        else if (header.Count == 0)
        {
            throw new GatewayException(401, "authentication_error", ErrorCodes.MissingKey,
                (acceptApiKeyHeader ? "Missing agent key. Send 'x-api-key: <agent key>' or 'Authorization: Bearer <agent key>'" : "Missing agent key. Send 'Authorization: Bearer <agent key>'")
                + "; an admin issues keys with POST /api/keys {\"agent\":\"NAME\"}.");
        }
        else
        {
            var value = header[0].AsSpan();
            if (!value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                throw new GatewayException(401, "authentication_error", ErrorCodes.InvalidKey, "The Authorization header must be 'Bearer <agent key>'.");
            }

            key = value[7..].Trim();
        }

        if (!keys.TryResolve(key, out var record))
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

    internal static IReadOnlyDictionary<string, string>? ReadMetadata(HttpContext context)
    {
        var header = context.Request.Headers[MetadataHeader];
        if (header.Count == 0 || string.IsNullOrWhiteSpace(header[0]))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(header[0]!);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, CallTags.Rule);
            }

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                {
                    throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, CallTags.Rule);
                }

                var value = property.Value.GetString()!;
                CallTags.Check(property.Name, value, result.Count);
                result[property.Name] = value;
            }

            return result;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string that cannot be decoded (an unpaired surrogate escape).
            throw GatewayException.BadRequest(ErrorCodes.InvalidMetadata, CallTags.Rule);
        }
    }

    internal static async Task<byte[]> ReadBodyAsync(HttpContext context, long limit)
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

}
