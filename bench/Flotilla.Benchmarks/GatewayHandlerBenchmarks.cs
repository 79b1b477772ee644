using BenchmarkDotNet.Attributes;
using Flotilla.Gateway;
using Flotilla.Gateway.Endpoints;
using Flotilla.Storage.Alerts;
using Flotilla.Storage.Keys;
using Flotilla.Storage.Traces;
using Flotilla.Storage.Usage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Flotilla.Benchmarks;

/// <summary>
/// One whole chat call through the gateway's handler, wired by <c>AddAiGateway</c> as the server wires it, without sockets:
/// the caller is a <see cref="DefaultHttpContext"/>, the upstream is <see cref="InMemoryUpstream"/>, the stores are in
/// memory. Auth, body scan, policy, routing, dispatch (retry pipeline, attempt), relay and trace are all in the figure;
/// Kestrel and the kernel are not. The baseline is the context alone, answered with a body of the same size.
/// <see cref="Policy"/>: <c>none</c>, <c>limits</c> (rate limit and budget) or <c>full</c> (plus input and output guardrails).
/// </summary>
[MemoryDiagnoser]
public class GatewayHandlerBenchmarks
{
    [Params("none", "limits", "full")]
    public string Policy { get; set; } = "none";

    private ServiceProvider _services = null!;
    private GatewayHandler _handler = null!;
    private string _authorization = null!;
    private byte[] _body = null!;
    private byte[] _streamBody = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<ITraceStore>(new NullTraceStore());
        services.AddSingleton(new TraceJournal(Path.Combine(Path.GetTempPath(), "flotilla-bench-" + Environment.ProcessId + ".jsonl")));
        services.AddSingleton<IAgentKeyStore>(new MemoryKeyStore());
        services.AddSingleton<IUsageStore>(new NullUsageStore());
        services.AddSingleton<IAlertStore>(new NullAlertStore());
        services.AddSingleton<Flotilla.Storage.Responses.IResponseStore>(new NullResponseStore());
        services.AddAiGateway(BenchData.LoadFleet(Policy));
        services.AddSingleton(new HttpMessageInvoker(new InMemoryUpstream()));
        _services = services.BuildServiceProvider();
        foreach (var hosted in _services.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
        }

        var (key, _) = await _services.GetRequiredService<AgentKeyRing>().IssueAsync("bench-agent", CancellationToken.None);
        _authorization = "Bearer " + key;
        _handler = _services.GetRequiredService<GatewayHandler>();
        _body = BenchData.ChatBody;
        _streamBody = BenchData.StreamBody;
        foreach (var body in new[] { _body, _streamBody })
        {
            var context = NewContext(body);
            await _handler.ChatAsync(context);
            if (context.Response.StatusCode != 200)
            {
                throw new InvalidOperationException($"the handler answered {context.Response.StatusCode}; the benchmark setup is wrong");
            }
        }
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        foreach (var hosted in _services.GetServices<IHostedService>())
        {
            await hosted.StopAsync(CancellationToken.None);
        }

        await _services.DisposeAsync();
    }

    [Benchmark(Baseline = true, Description = "baseline: context + 400-byte answer")]
    public async Task<int> ContextOnly()
    {
        var context = NewContext(_body);
        await context.Request.Body.CopyToAsync(Stream.Null);
        context.Response.ContentType = "application/json";
        await context.Response.BodyWriter.WriteAsync(BenchData.Completion);
        return context.Response.StatusCode;
    }

    [Benchmark(Description = "chat call, non-streaming")]
    public async Task<int> Chat()
    {
        var context = NewContext(_body);
        await _handler.ChatAsync(context);
        return context.Response.StatusCode;
    }

    [Benchmark(Description = "chat call, streaming (21 events)")]
    public async Task<int> ChatStream()
    {
        var context = NewContext(_streamBody);
        await _handler.ChatAsync(context);
        return context.Response.StatusCode;
    }

    private DefaultHttpContext NewContext(byte[] body)
    {
        var context = new DefaultHttpContext();
        var request = context.Request;
        request.Method = HttpMethods.Post;
        request.Scheme = "http";
        request.Path = "/v1/chat/completions";
        request.ContentType = "application/json";
        request.ContentLength = body.Length;
        request.Headers.Authorization = _authorization;
        request.Body = new MemoryStream(body, writable: false);
        context.Response.Body = Stream.Null;
        return context;
    }

    private sealed class NullTraceStore : ITraceStore
    {
        public Task AppendAsync(IReadOnlyList<TraceRecord> batch, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IReadOnlyList<TraceRecord>> QueryAsync(TraceQuery query, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<TraceRecord>>([]);


        public Task<long> PruneAsync(DateTimeOffset before, int chunk, CancellationToken cancellationToken) => Task.FromResult(0L);
    }

    private sealed class NullUsageStore : IUsageStore
    {
        public Task<IReadOnlyList<UsageRow>> QueryAsync(string dimension, DateTimeOffset since, DateTimeOffset? until, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<UsageRow>>([]);

        public Task<IReadOnlyDictionary<string, decimal>> SpendSinceAsync(string dimension, DateTimeOffset windowStart, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyDictionary<string, decimal>>(new Dictionary<string, decimal>());

        public Task<long> PruneAsync(DateTimeOffset hourlyBefore, DateTimeOffset minuteBefore, int chunk, CancellationToken cancellationToken) => Task.FromResult(0L);
    }

    private sealed class NullAlertStore : IAlertStore
    {
        public Task AddAsync(AlertRecord alert, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task SetDeliveryAsync(string id, string delivery, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IReadOnlyList<AlertRecord>> ListAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<AlertRecord>>([]);
    }

    private sealed class NullResponseStore : Flotilla.Storage.Responses.IResponseStore
    {
        public Task PutAsync(Flotilla.Storage.Responses.StoredResponse response, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IReadOnlyList<string>?> GetConversationAsync(string agent, string id, DateTimeOffset now, CancellationToken cancellationToken) =>
            Task.FromResult<IReadOnlyList<string>?>(null);

        public Task<long> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken) => Task.FromResult(0L);
    }
}
