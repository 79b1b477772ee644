using System.Net.Http.Headers;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Guardrails.Secrets;

namespace Flotilla.Guardrails.Webhook;

internal enum WebhookAction { Allow, Block, Redact }

/// <summary>A webhook's decision, or why there is none (<see cref="Failure"/>: timeout, transport error, bad answer).</summary>
internal readonly record struct WebhookAnswer(WebhookAction Action, string? Reason, IReadOnlyList<string>? Texts, string? Failure)
{
    /// <summary>How long the call took, in microseconds.</summary>
    public long Microseconds { get; init; }

    public static WebhookAnswer Failed(string failure) => new(WebhookAction.Allow, null, null, failure);
}

/// <summary>
/// <c>webhook</c>: POSTs <c>{"hook","guardrail","agent","team","texts"}</c> as JSON to <see cref="GuardrailRef.Url"/> and
/// waits at most <see cref="GuardrailRef.TimeoutMs"/> (default 1000) for <c>{"action","reason","texts"}</c>.
/// </summary>
internal sealed class WebhookGuardrail : Guardrail
{
    private const int MaxReasonLength = 300;
    private static readonly MediaTypeHeaderValue Json = new("application/json");

    private readonly HttpClient _http;
    private readonly TimeProvider _time;
    private readonly Uri _url;

    public WebhookGuardrail(GuardrailRef config, HttpClient http, TimeProvider time) : base(config)
    {
        _url = config.Url ?? throw new ArgumentException($"guardrail '{config.Name}': type webhook needs url", nameof(config));
        _http = http;
        _time = time;
    }

    public async Task<WebhookAnswer> CallAsync(GuardrailHook hook, IReadOnlyList<string> texts, GuardrailContext context, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var answer = await SendAsync(hook, texts, context, cancellationToken).ConfigureAwait(false);
        return answer with { Microseconds = (long)_time.GetElapsedTime(started).TotalMicroseconds };
    }

    private async Task<WebhookAnswer> SendAsync(GuardrailHook hook, IReadOnlyList<string> texts, GuardrailContext context, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(Config.TimeoutMs), _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        try
        {
            var body = JsonSerializer.SerializeToUtf8Bytes(new WebhookRequest(hook.Name(), Config.Name, context.Agent, context.Team, texts), WebhookJson.Default.WebhookRequest);
            using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = Json;
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return WebhookAnswer.Failed($"answered HTTP {(int)response.StatusCode}");
            }

            var answerBytes = await ReadBoundedAsync(response.Content, linked.Token).ConfigureAwait(false);
            if (answerBytes is null)
            {
                return WebhookAnswer.Failed($"answered with a body over {MaxAnswerBytes / 1024} KB");
            }

            return Interpret(JsonSerializer.Deserialize(answerBytes, WebhookJson.Default.WebhookResponse), texts.Count);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return WebhookAnswer.Failed($"did not answer within {Config.TimeoutMs} ms");
        }
        catch (HttpRequestException e)
        {
            return WebhookAnswer.Failed($"could not be reached ({e.HttpRequestError})");
        }
        catch (JsonException)
        {
            return WebhookAnswer.Failed("answered with invalid JSON");
        }
    }

    /// <summary>Largest webhook answer read; a verdict is a few hundred bytes, redacted texts rarely more than the request.</summary>
    public const int MaxAnswerBytes = 1024 * 1024;

    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxAnswerBytes)
        {
            return null;
        }

        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > MaxAnswerBytes)
                {
                    return null;
                }

                buffer.Write(chunk, 0, read);
            }

            return buffer.ToArray();
        }
    }

    private static WebhookAnswer Interpret(WebhookResponse? answer, int count)
    {
        var reason = Scrub(answer?.Reason);
        switch (answer?.Action?.ToLowerInvariant())
        {
            case "allow":
                return new WebhookAnswer(WebhookAction.Allow, reason, null, null);
            case "block":
                return new WebhookAnswer(WebhookAction.Block, reason, null, null);
            case "redact" when answer.Texts is { } texts && texts.Count == count:
                return new WebhookAnswer(WebhookAction.Redact, reason, texts, null);
            case "redact":
                return WebhookAnswer.Failed($"answered redact without {count} texts");
            case null:
                return WebhookAnswer.Failed("answered without an action");
            default:
                return WebhookAnswer.Failed("answered an unknown action (expected allow, block or redact)");
        }
    }

    // A webhook's reason reaches the caller and the trace: it must not carry a credential the webhook echoed back.
    private static string? Scrub(string? reason)
    {
        if (string.IsNullOrWhiteSpace(reason))
        {
            return null;
        }

        reason = SecretDetector.Redact(reason);
        return reason.Length > MaxReasonLength ? reason[..MaxReasonLength] + "…" : reason;
    }
}
