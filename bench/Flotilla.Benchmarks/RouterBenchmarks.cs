using BenchmarkDotNet.Attributes;
using Flotilla.Gateway;
using Flotilla.Gateway.Routing;

namespace Flotilla.Benchmarks;

/// <summary>Ordering a virtual model's three targets for one call, per strategy.</summary>
[MemoryDiagnoser]
public class RouterBenchmarks
{
    private VirtualModelRouter _router = null!;
    private Route _priority = null!;
    private Route _weight = null!;
    private Route _latency = null!;
    private HttpMessageInvoker _http = null!;

    [GlobalSetup]
    public void Setup()
    {
        _http = new HttpMessageInvoker(new InMemoryUpstream());
        var fleet = new FleetState(BenchData.LoadFleet(), _http, TimeProvider.System);
        var routes = fleet.Current.Routes;
        _priority = Get(routes, "bench");
        _weight = Get(routes, "bench-weight");
        _latency = Get(routes, "bench-latency");
        // Measured speeds, two of three within the default latency_factor (1.5) of the fastest.
        fleet.Health.RecordLatency("model-a", 200, 20);
        fleet.Health.RecordLatency("model-b", 260, 20);
        fleet.Health.RecordLatency("model-c", 900, 20);
        _router = new VirtualModelRouter(fleet.Health);

        static Route Get(RouteTable routes, string name) =>
            routes.TryGet(name, out var route) ? route : throw new InvalidOperationException($"route {name} missing");
    }

    [GlobalCleanup]
    public void Cleanup() => _http.Dispose();

    [Benchmark(Description = "Plan: priority")]
    public object PlanPriority() => _router.Plan(_priority);

    [Benchmark(Description = "Plan: weight")]
    public object PlanWeight() => _router.Plan(_weight);

    [Benchmark(Description = "Plan: latency")]
    public object PlanLatency() => _router.Plan(_latency);
}
