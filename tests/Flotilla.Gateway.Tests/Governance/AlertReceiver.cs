using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>
/// An alert webhook on a real socket (Kestrel on 127.0.0.1, a free port). It records every JSON payload posted to it and
/// answers 200, or 500 for the first <c>failFirst</c> posts; with <see cref="Hang"/> it never answers.
/// </summary>
internal sealed class AlertReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<JsonElement> _posts = [];
    private int _failuresLeft;
    private int _aborted;

    private AlertReceiver(WebApplication app, int failFirst, bool hang)
    {
        _app = app;
        _failuresLeft = failFirst;
        Hang = hang;
    }

    public bool Hang { get; }

    /// <summary>Held posts the sender gave up on (its timeout) while this receiver was still holding them.</summary>
    public int Aborted => Volatile.Read(ref _aborted);

    public Uri Url { get; private set; } = null!;

    /// <summary>Payloads received so far (including those answered 500), oldest first.</summary>
    public IReadOnlyList<JsonElement> Posts
    {
        get
        {
            lock (_posts)
            {
                return [.. _posts];
            }
        }
    }

    public static async Task<AlertReceiver> StartAsync(int failFirst = 0, bool hang = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new AlertReceiver(app, failFirst, hang);
        app.MapPost("/hooks/alerts", receiver.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Url = new Uri(new Uri(address), "/hooks/alerts");
        return receiver;
    }

    /// <summary>Waits (real time, bounded) until at least <paramref name="count"/> payloads have arrived.</summary>
    public async Task<IReadOnlyList<JsonElement>> WaitForAsync(int count, Action? tick = null, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            var posts = Posts;
            if (posts.Count >= count)
            {
                return posts;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"expected {count} webhook posts, got {posts.Count}");
            }

            tick?.Invoke();
            await Task.Delay(20);
        }
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var document = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        lock (_posts)
        {
            _posts.Add(document.RootElement.Clone());
        }

        if (Hang)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, _stopping.Token);
            await Task.Delay(Timeout.InfiniteTimeSpan, linked.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            if (context.RequestAborted.IsCancellationRequested && !_stopping.IsCancellationRequested)
            {
                Interlocked.Increment(ref _aborted);
            }

            return;
        }

        context.Response.StatusCode = Interlocked.Decrement(ref _failuresLeft) >= 0 ? 500 : 200;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }
}
