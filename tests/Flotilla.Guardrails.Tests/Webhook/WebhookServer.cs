using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Flotilla.Guardrails.Tests.Webhook;

/// <summary>A real HTTP server on 127.0.0.1 that answers webhook guardrail requests with a handler.</summary>
internal sealed class WebhookServer : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Func<string, CancellationToken, Task<(int Status, string Body)>> _respond;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<string> _requests = [];

    private WebhookServer(HttpListener listener, Uri url, Func<string, CancellationToken, Task<(int Status, string Body)>> respond)
    {
        _listener = listener;
        _respond = respond;
        Url = url;
        _loop = Task.Run(AcceptAsync);
    }

    public Uri Url { get; }

    /// <summary>The request bodies received so far.</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_requests)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Set when the first request has arrived.</summary>
    public TaskCompletionSource Received { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static WebhookServer Start(Func<string, CancellationToken, Task<(int Status, string Body)>> respond)
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = FreePort();
            var url = new Uri($"http://127.0.0.1:{port}/guardrail/");
            var listener = new HttpListener();
            listener.Prefixes.Add(url.ToString());
            try
            {
                listener.Start();
                return new WebhookServer(listener, url, respond);
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                listener.Close();
            }
        }
    }

    public static WebhookServer Answering(string json, int status = 200) => Start((_, _) => Task.FromResult((status, json)));

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        try
        {
            using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(_stop.Token);
            lock (_requests)
            {
                _requests.Add(body);
            }

            Received.TrySetResult();
            var (status, answer) = await _respond(body, _stop.Token);
            var bytes = Encoding.UTF8.GetBytes(answer);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes, _stop.Token);
            context.Response.Close();
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            context.Response.Abort();
        }
        catch (HttpListenerException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _listener.Close();
        await _loop;
        _stop.Dispose();
    }
}
