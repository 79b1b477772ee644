using System.Net.Http.Headers;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Streaming;

namespace Flotilla.Gateway.Providers.OpenAI;

/// <summary>
/// Any OpenAI-compatible endpoint. The caller's body is forwarded as it came, with only the model replaced; when streaming,
/// usage is always requested upstream (for the trace and cost) and the usage chunk is dropped again if the caller did not ask for it.
/// </summary>
internal sealed class OpenAIProvider(ProviderConfig config, HttpMessageInvoker http, TimeProvider time) : IModelProvider
{
    private static readonly Uri DefaultBaseUrl = new("https://api.openai.com/v1/");
    private readonly Uri _chatUri = new(WithSlash(config.BaseUrl ?? DefaultBaseUrl), "chat/completions");
    private readonly Uri _embeddingsUri = new(WithSlash(config.BaseUrl ?? DefaultBaseUrl), "embeddings");

    public ProviderConfig Config => config;

    public async Task<UpstreamReply> SendAsync(UpstreamCall call, CancellationToken cancellationToken)
    {
        string? key = null;
        if (config.ApiKey is { } secret && (key = secret.Resolve()) is null or "")
        {
            return UpstreamReply.Failed(AttemptOutcome.ConfigError, 0,
                $"provider '{config.Name}' has no API key: set the environment variable {secret.EnvironmentVariable}");
        }

        var stream = call.Kind == CallKind.Chat && call.Request.Stream;
        using var request = new HttpRequestMessage(HttpMethod.Post, call.Kind == CallKind.Chat ? _chatUri : _embeddingsUri)
        {
            Content = UpstreamHttp.Json(call.Request.RewriteForUpstream(call.Model.UpstreamModel, forceUsage: stream)),
        };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        foreach (var (name, value) in config.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value.Resolve());
        }

        if (stream)
        {
            request.Headers.Accept.ParseAdd("text/event-stream");
        }

        var response = await http.SendAsync(request, cancellationToken);
        try
        {
            if (!response.IsSuccessStatusCode)
            {
                using (response)
                {
                    return await UpstreamHttp.FailureAsync(response, config.Name, time, ReadErrorMessage, cancellationToken);
                }
            }

            if (stream)
            {
                if (response.Content.Headers.ContentType?.MediaType != "text/event-stream")
                {
                    response.Dispose();
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200,
                        $"provider '{config.Name}' answered a streaming request with {response.Content.Headers.ContentType?.MediaType ?? "no content type"} instead of text/event-stream");
                }

                var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                return UpstreamReply.Streaming(new OpenAIChunkStream(response, new SseReader(body), call.Request.IncludeUsage));
            }

            using (response)
            {
                var body = await UpstreamHttp.ReadBodyAsync(response, UpstreamHttp.MaxAnswerBodyBytes, cancellationToken);
                if (body is null)
                {
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{config.Name}' sent an answer over 64 MiB");
                }

                if (!UsageReader.TryRead(body, out var usage, out _))
                {
                    return UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{config.Name}' sent an answer that is not JSON");
                }

                return UpstreamReply.Answer(body, usage);
            }
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    internal static string? ReadErrorMessage(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("error", out var error))
            {
                return error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) ? message.GetString() : error.ToString();
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private static Uri WithSlash(Uri uri) => uri.AbsoluteUri.EndsWith('/') ? uri : new Uri(uri.AbsoluteUri + "/");

    /// <summary>Relays OpenAI SSE chunks as they are; reads usage from the final chunk and hides it unless the caller asked for it.</summary>
    private sealed class OpenAIChunkStream(HttpResponseMessage response, SseReader reader, bool callerWantsUsage) : IChunkStream
    {
        private bool _done;

        public ReadOnlyMemory<byte> Current { get; private set; }

        public TokenUsage Usage { get; private set; }

        public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
        {
            while (!_done)
            {
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
                    throw new StreamBrokenException("the upstream stream ended before [DONE]");
                }

                var data = sseEvent.Data;
                if (data.Span.SequenceEqual("[DONE]"u8))
                {
                    _done = true;
                    return false;
                }

                if (data.Span.IndexOf("\"usage\""u8) >= 0 && UsageReader.TryRead(data.Span, out var usage, out var hasUsage) && hasUsage)
                {
                    Usage = usage;
                    if (!callerWantsUsage && IsUsageOnly(data.Span))
                    {
                        continue;
                    }
                }
                else if (data.Span.IndexOf("\"error\""u8) >= 0 && data.Span.StartsWith("{\"error\""u8))
                {
                    throw new StreamBrokenException("the upstream sent an error event mid-stream");
                }

                Current = data;
                return true;
            }

            return false;
        }

        private static bool IsUsageOnly(ReadOnlySpan<byte> chunk) => chunk.IndexOf("\"choices\":[]"u8) >= 0;

        public async ValueTask DisposeAsync()
        {
            await reader.DisposeAsync();
            response.Dispose();
        }
    }
}
