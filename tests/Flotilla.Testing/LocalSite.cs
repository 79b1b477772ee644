using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Flotilla.Testing;

/// <summary>
/// A small web server on 127.0.0.1 (a free port) for what a test needs to stand on the other end of a wire — a webhook, an
/// OTLP receiver, a redirect — answering every request with one handler and keeping each request's body.
/// </summary>
public sealed class LocalSite : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<byte[]> _bodies = [];

    private LocalSite(WebApplication app) => _app = app;

    /// <summary>The site's address; every path answers.</summary>
    public Uri Url { get; private set; } = null!;

    public int Requests
    {
        get
        {
            lock (_bodies)
            {
                return _bodies.Count;
            }
        }
    }

    /// <summary>The request bodies received so far, oldest first.</summary>
    public IReadOnlyList<byte[]> Bodies
    {
        get
        {
            lock (_bodies)
            {
                return [.. _bodies];
            }
        }
    }

    public static async Task<LocalSite> StartAsync(Func<HttpContext, Task> respond, string path = "/hook")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var site = new LocalSite(app);
        app.Run(async context =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
            lock (site._bodies)
            {
                site._bodies.Add(buffer.ToArray());
            }

            await respond(context);
        });
        await app.StartAsync();
        site.Url = new Uri(new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), path);
        return site;
    }

    /// <summary>Waits (real time, bounded) for a body that <paramref name="match"/> accepts.</summary>
    public async Task<byte[]> WaitForAsync(Func<byte[], bool> match, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            if (Bodies.FirstOrDefault(match) is { } body)
            {
                return body;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no matching request reached {Url} ({Requests} received)");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
