using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Flotilla.Testing;

/// <summary>
/// A model provider on a real socket (Kestrel on 127.0.0.1, a free port) that speaks the OpenAI wire format
/// (<c>POST /v1/chat/completions</c>, streamed or not; <c>POST /v1/embeddings</c>) and Anthropic's Messages API
/// (<c>POST /v1/messages</c>, streamed or not). It records every request, and each request follows the next queued
/// <see cref="UpstreamBehaviour"/>; with nothing queued it answers validly.
/// </summary>
/// <remarks>
/// The default answer is text naming this upstream and the requested model (<c>Hello from NAME (MODEL).</c>). When the
/// request offers tools it calls the first one with <see cref="DefaultToolArguments"/>, and once a tool result comes back it
/// answers <c>The tool said: RESULT</c>. Usage is always <see cref="PromptTokens"/> in and <see cref="CompletionTokens"/> out.
/// </remarks>
public sealed partial class FakeUpstream : IAsyncDisposable
{
    public const int PromptTokens = 12;
    public const int CompletionTokens = 7;
    public const string DefaultToolArguments = """{"city":"Paris","days":3}""";

    /// <summary>Every embedding the fake returns; exact in binary so a decoded vector can be compared with ==.</summary>
    public static IReadOnlyList<float> EmbeddingVector { get; } = [0.5f, -0.25f, 0.125f, 1f, 0f, -1f, 0.75f, 0.0625f];

    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentQueue<UpstreamBehaviour> _script = new();
    private readonly List<RecordedRequest> _requests = [];
    private int _ids;

    private FakeUpstream(string name, WebApplication app)
    {
        Name = name;
        _app = app;
    }

    public string Name { get; }

    public int Port { get; private set; }

    /// <summary><c>http://127.0.0.1:PORT/v1</c>: the <c>base_url</c> of an openai or anthropic provider.</summary>
    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/v1");

    /// <summary>Requests received so far, oldest first.</summary>
    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    public static async Task<FakeUpstream> StartAsync(string name = "fake")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var upstream = new FakeUpstream(name, app);
        app.Run(upstream.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        upstream.Port = new Uri(address).Port;
        return upstream;
    }

    /// <summary>Queues behaviours for the next requests, in order.</summary>
    public FakeUpstream Enqueue(params UpstreamBehaviour[] behaviours)
    {
        foreach (var behaviour in behaviours)
        {
            _script.Enqueue(behaviour);
        }

        return this;
    }

    /// <summary>A port on 127.0.0.1 where nothing listens: connecting to it is refused.</summary>
    public static int UnusedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        // Stalled requests end first, so that stopping does not wait for them.
        await _stopping.CancelAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token);
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        string body;
        using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        var request = new RecordedRequest(
            context.Request.Method,
            context.Request.Path.Value ?? "",
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            body);
        lock (_requests)
        {
            _requests.Add(request);
        }

        var behaviour = _script.TryDequeue(out var next) ? next : UpstreamBehaviour.Answer();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
        try
        {
            await RunAsync(context, request, behaviour, cancel.Token);
        }
        catch (OperationCanceledException)
        {
            context.Abort();
        }
    }

    private async Task RunAsync(HttpContext context, RecordedRequest request, UpstreamBehaviour behaviour, CancellationToken cancellationToken)
    {
        switch (behaviour.Kind)
        {
            case UpstreamBehaviourKind.Respond:
                await WriteAsync(context, behaviour.Status, behaviour.Body ?? "", behaviour.Headers, cancellationToken);
                return;
            case UpstreamBehaviourKind.StallBeforeHeaders:
                await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
                return;
            case UpstreamBehaviourKind.Garbage:
                await WriteAsync(context, 200, "<html><body>502 Bad Gateway</body></html> this is not JSON", [], cancellationToken);
                return;
            case UpstreamBehaviourKind.Abort:
                context.Abort();
                return;
        }

        JsonNode json;
        try
        {
            json = request.Json;
        }
        catch (System.Text.Json.JsonException)
        {
            await WriteAsync(context, 400, """{"error":{"message":"the fake upstream got a body that is not JSON","type":"invalid_request_error"}}""", [], cancellationToken);
            return;
        }

        var stream = json["stream"] is JsonValue s && s.TryGetValue<bool>(out var on) && on;
        var answer = request.Path switch
        {
            "/v1/chat/completions" when stream => Answer.Stream(OpenAIChunks(json, behaviour)),
            "/v1/chat/completions" => Answer.Json(OpenAICompletion(json, behaviour)),
            "/v1/embeddings" => Answer.Json(OpenAIEmbeddings(json)),
            "/v1/messages" when stream => Answer.Stream(AnthropicEvents(json, behaviour)),
            "/v1/messages" => Answer.Json(AnthropicMessage(json, behaviour)),
            _ => null,
        };
        if (answer is null)
        {
            await WriteAsync(context, 404, $$$"""{"error":{"message":"the fake upstream has no {{{request.Path}}}","type":"invalid_request_error"}}""", [], cancellationToken);
            return;
        }

        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = answer.Events is null ? "application/json" : "text/event-stream";
        if (behaviour.Kind == UpstreamBehaviourKind.StallBeforeFirstEvent)
        {
            await response.StartAsync(cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
            await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            return;
        }

        if (answer.Events is null)
        {
            var bytes = Encoding.UTF8.GetBytes(answer.Body!);
            if (behaviour.Kind == UpstreamBehaviourKind.BreakAfterEvents)
            {
                // A body cut off halfway.
                await response.Body.WriteAsync(bytes.AsMemory(0, bytes.Length / 2), cancellationToken);
                await response.Body.FlushAsync(cancellationToken);
                await CutAsync(context);
                return;
            }

            response.ContentLength = bytes.Length;
            await response.Body.WriteAsync(bytes, cancellationToken);
            return;
        }

        response.Headers.CacheControl = "no-cache";
        var sent = 0;
        foreach (var (name, data) in answer.Events)
        {
            if (behaviour.Kind == UpstreamBehaviourKind.BreakAfterEvents && sent == behaviour.Events)
            {
                await CutAsync(context);
                return;
            }

            var text = name is null ? $"data: {data}\n\n" : $"event: {name}\ndata: {data}\n\n";
            await response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), cancellationToken);
            await response.Body.FlushAsync(cancellationToken);
            sent++;
        }
    }

    /// <summary>Cuts the connection after what was written so far has left.</summary>
    private static async Task CutAsync(HttpContext context)
    {
        // A flush hands bytes to Kestrel's transport, not to the socket, and an abort drops what the transport still holds.
        // There is no signal for "sent", so give it a moment: on loopback that is ample.
        await Task.Delay(100, context.RequestAborted);
        context.Abort();
    }

    private static async Task WriteAsync(HttpContext context, int status, string body, IReadOnlyList<(string Name, string Value)> headers, CancellationToken cancellationToken)
    {
        var response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        foreach (var (name, value) in headers)
        {
            response.Headers[name] = value;
        }

        await response.WriteAsync(body, cancellationToken);
    }

    private string NextId(string prefix) => $"{prefix}{Name}_{Interlocked.Increment(ref _ids)}";

    /// <summary>The text a default answer carries.</summary>
    public string DefaultText(string model) => $"Hello from {Name} ({model}).";

    /// <summary>Text split into word-sized pieces, spaces kept, as a model streams it.</summary>
    private static IEnumerable<string> Words(string text)
    {
        var start = 0;
        for (var i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || text[i - 1] == ' ')
            {
                if (i > start)
                {
                    yield return text[start..i];
                }

                start = i;
            }
        }
    }

    private static IEnumerable<string> Pieces(string text, int size)
    {
        for (var i = 0; i < text.Length; i += size)
        {
            yield return text.Substring(i, Math.Min(size, text.Length - i));
        }
    }

    /// <summary>A text of string or content-part form (OpenAI <c>content</c>, Anthropic <c>content</c> or tool result).</summary>
    private static string TextOf(JsonNode? content) => content switch
    {
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        JsonArray parts => string.Concat(parts.Select(p => p?["text"] is JsonValue t && t.TryGetValue<string>(out var text) ? text : "")),
        _ => "",
    };

    private static string? StringOf(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    /// <summary>A whole JSON body, or the SSE events of a stream (name, data).</summary>
    private sealed record Answer(string? Body, IReadOnlyList<(string? Name, string Data)>? Events)
    {
        public static Answer Json(JsonNode body) => new(body.ToJsonString(), null);

        public static Answer Stream(IReadOnlyList<(string? Name, string Data)> events) => new(null, events);
    }

    /// <summary>What the fake decided to answer: text, or a tool call (possibly with a lead-in text).</summary>
    private sealed record Decision(string Model, string? Text, string? ToolName, string? ToolArguments);
}
