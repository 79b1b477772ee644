using System.Net;

namespace Flotilla.Governance.Http;

/// <summary>The HTTP client policy for the fleet's outbound webhooks (guardrail and alert webhooks).</summary>
public static class OutboundHttp
{
    /// <summary>Largest answer buffered from a webhook; a longer one is treated as a failed call.</summary>
    public const int MaxWebhookAnswerBytes = 64 * 1024;

    /// <summary>
    /// The client for the fleet's outbound webhooks, under the same policy as model upstreams: no redirects (a 3xx is an
    /// answer, not an instruction to send the payload elsewhere), no ambient proxy from the environment, no cookies, answers
    /// buffered only up to <see cref="MaxWebhookAnswerBytes"/>, and <paramref name="timeout"/> per call.
    /// </summary>
    public static HttpClient CreateWebhookClient(TimeSpan timeout) => new(CreateWebhookHandler(), disposeHandler: true)
    {
        Timeout = timeout,
        MaxResponseContentBufferSize = MaxWebhookAnswerBytes,
    };

    public static SocketsHttpHandler CreateWebhookHandler() => new()
    {
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        MaxResponseHeadersLength = 64,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };
}
