using Flotilla.Fleet;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Streaming;

namespace Flotilla.Gateway.Providers.Anthropic;

/// <summary>Anthropic's Messages API behind the OpenAI wire format: requests, answers, tool use and streams are translated both ways.</summary>
internal sealed class AnthropicProvider(ProviderConfig config, HttpMessageInvoker http, TimeProvider time) : IModelProvider
{
    private const string ApiVersion = "2023-06-01";
    private readonly Uri _messagesUri = new(new Uri((config.BaseUrl ?? new Uri("https://api.anthropic.com/v1/")).AbsoluteUri.TrimEnd('/') + "/"), "messages");

    public ProviderConfig Config => config;

    public async Task<UpstreamReply> SendAsync(UpstreamCall call, CancellationToken cancellationToken)
    {
        if (call.Kind == CallKind.Embeddings)
        {
            return UpstreamReply.Failed(AttemptOutcome.Status, 400, $"provider '{config.Name}' (anthropic) does not offer embeddings",
                ErrorWriter.ToJson("Anthropic models do not offer embeddings; route embeddings to an OpenAI-compatible or simulated model.",
                    "invalid_request_error", ErrorCodes.Unsupported, "model"));
        }

        string? key = null;
        if (config.ApiKey is { } secret && (key = secret.Resolve()) is null or "")
        {
            return UpstreamReply.Failed(AttemptOutcome.ConfigError, 0,
                $"provider '{config.Name}' has no API key: set the environment variable {secret.EnvironmentVariable}");
        }

        var stream = call.Request.Stream;
        // A caller that spoke Messages is sent its own body (thinking, cache_control and all), not a translation of a translation.
        var keepThinking = call.Request.Ingress == IngressFormat.Messages;
        var forwarded = call.Request.NativeBody is not null && keepThinking;
        if (!forwarded && call.Request.NativeOnly is { } nativeOnly)
        {
            // A redacting guardrail changed the request, and its Chat Completions form cannot say everything the caller's did.
            return UpstreamReply.Failed(AttemptOutcome.Status, 400, nativeOnly, ErrorWriter.ToJson(
                $"{nativeOnly}; an input guardrail changed the request, and the changed request cannot carry it.", "invalid_request_error", ErrorCodes.Unsupported));
        }

        var body = forwarded
            ? AnthropicTranslator.WithModel(call.Request.NativeBody!, call.Model.UpstreamModel)
            : AnthropicTranslator.ToMessagesRequest(call.Request.Document, call.Model.UpstreamModel, stream);
        using var request = new HttpRequestMessage(HttpMethod.Post, _messagesUri) { Content = UpstreamHttp.Json(body) };
        if (forwarded && call.Request.AnthropicBeta is { Length: > 0 } beta)
        {
            request.Headers.TryAddWithoutValidation("anthropic-beta", beta);
        }

        if (key is not null)
        {
            request.Headers.TryAddWithoutValidation("x-api-key", key);
        }

        request.Headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
        foreach (var (name, value) in config.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value.Resolve());
        }

        var response = await http.SendAsync(request, cancellationToken);
        try
        {
            if (!response.IsSuccessStatusCode)
            {
                using (response)
                {
                    var failure = await UpstreamHttp.FailureAsync(response, config.Name, time, b => AnthropicTranslator.ReadErrorMessage(b), cancellationToken);
                    // Relay 4xx in OpenAI's shape so callers see one error format whatever the provider.
                    return failure.Body is { } raw && AnthropicTranslator.ReadErrorMessage(raw) is { } message
                        ? UpstreamReply.Failed(failure.Outcome, failure.Status, failure.Error!,
                            ErrorWriter.ToJson(message, failure.Status == 429 ? "rate_limit_error" : "invalid_request_error", ErrorCodes.UpstreamError), failure.RetryAfter)
                        : failure;
                }
            }

            var created = time.GetUtcNow().ToUnixTimeSeconds();
            if (stream)
            {
                if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
                {
                    response.Dispose();
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{config.Name}' answered a streaming request without text/event-stream");
                }

                var content = await response.Content.ReadAsStreamAsync(cancellationToken);
                var translator = new AnthropicStreamTranslator("chatcmpl-" + Guid.NewGuid().ToString("N"), call.Model.Name, created, call.Request.IncludeUsage, keepThinking);
                return UpstreamReply.Streaming(new AnthropicChunkStream(response, new SseReader(content), translator));
            }

            using (response)
            {
                var raw = await UpstreamHttp.ReadBodyAsync(response, UpstreamHttp.MaxAnswerBodyBytes, cancellationToken);
                if (raw is null)
                {
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{config.Name}' sent an answer over 64 MiB");
                }

                try
                {
                    var translated = AnthropicTranslator.ToChatCompletion(raw, call.Model.Name, out var usage, time, keepThinking);
                    return UpstreamReply.Answer(translated, usage);
                }
                catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException or KeyNotFoundException)
                {
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{config.Name}' sent an answer that is not a Messages response");
                }
            }
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private sealed class AnthropicChunkStream(HttpResponseMessage response, SseReader reader, AnthropicStreamTranslator translator) : IChunkStream
    {
        private readonly List<byte[]> _pending = [];
        private int _next;

        public ReadOnlyMemory<byte> Current { get; private set; }

        public TokenUsage Usage => translator.Usage;

        public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                if (_next < _pending.Count)
                {
                    Current = _pending[_next++];
                    return true;
                }

                _pending.Clear();
                _next = 0;
                if (translator.Completed)
                {
                    return false;
                }

                SseEvent? next;
                try
                {
                    next = await reader.ReadAsync(cancellationToken);
                }
                catch (Exception e) when (e is IOException or HttpRequestException or InvalidDataException)
                {
                    throw new StreamBrokenException("the upstream stream broke off before it finished", e);
                }

                if (next is not { } sseEvent)
                {
                    throw new StreamBrokenException("the upstream stream ended before message_stop");
                }

                try
                {
                    translator.OnEvent(sseEvent.Name, sseEvent.Data.Span, _pending);
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
                {
                    throw new StreamBrokenException("the upstream sent an event that is not valid JSON", e);
                }

                if (translator.Error is { } error)
                {
                    throw new StreamBrokenException($"the upstream sent an error event: {UpstreamHttp.Truncate(error, 200)}");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await reader.DisposeAsync();
            response.Dispose();
        }
    }
}
