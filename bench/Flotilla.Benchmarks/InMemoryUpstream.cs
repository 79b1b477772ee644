using System.Net;
using System.Net.Http.Headers;

namespace Flotilla.Benchmarks;

/// <summary>
/// An OpenAI upstream inside the process: reads the request body (as a socket would) and answers the canned completion,
/// or the canned stream when the body asks for one. No sockets, so the figures are the gateway's own work.
/// </summary>
internal sealed class InMemoryUpstream : HttpMessageHandler
{
    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private static readonly MediaTypeHeaderValue EventStream = new("text/event-stream");
    private readonly byte[] _stream = BenchData.SseStream(contentChunks: 18);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var streaming = request.Headers.Accept.Count > 0;
        if (request.Content is { } content)
        {
            await content.CopyToAsync(Stream.Null, cancellationToken);
        }

        var body = streaming ? _stream : BenchData.Completion;
        var answer = new ByteArrayContent(body);
        answer.Headers.ContentType = streaming ? EventStream : Json;
        answer.Headers.ContentLength = body.Length;
        return new HttpResponseMessage(HttpStatusCode.OK) { Content = answer, RequestMessage = request };
    }
}
