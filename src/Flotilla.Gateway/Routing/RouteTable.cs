using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Gateway.Providers;

namespace Flotilla.Gateway.Routing;

/// <summary>A concrete model and the provider that serves it.</summary>
internal sealed record RoutedModel(ModelConfig Config, IModelProvider Provider)
{
    public string Name => Config.Name;
}

/// <summary>One target of a route with its routing attributes.</summary>
internal sealed record RouteMember(RoutedModel Model, int Priority, double Weight);

/// <summary>
/// What a model name in a request resolves to: a virtual model with several targets, or a plain model (one target,
/// retries but no fallback). Targets of a priority route are pre-sorted.
/// </summary>
internal sealed record Route(
    string Name,
    bool IsVirtual,
    RoutingStrategy Strategy,
    RouteMember[] Members,
    FrozenSet<int> FallbackOn,
    int? TtftTimeoutMs,
    double LatencyFactor,
    ModelKind Kind);

/// <summary>Every routable name of a fleet, built once per fleet version.</summary>
internal sealed class RouteTable
{
    private readonly FrozenDictionary<string, Route> _routes;

    public RouteTable(GatewayConfig gateway, IReadOnlyDictionary<string, IModelProvider> providers)
    {
        Models = gateway.Models
            .Where(m => providers.ContainsKey(m.Provider))
            .ToFrozenDictionary(m => m.Name, m => new RoutedModel(m, providers[m.Provider]), StringComparer.Ordinal);
        var routes = new Dictionary<string, Route>(StringComparer.Ordinal);
        foreach (var model in Models.Values)
        {
            routes[model.Name] = new Route(model.Name, false, RoutingStrategy.Priority, [new RouteMember(model, 0, 1)],
                VirtualModelConfig.DefaultFallbackOn.ToFrozenSet(), null, 1.5, model.Config.Kind);
        }

        foreach (var vm in gateway.Routing.VirtualModels)
        {
            var members = vm.Targets.Where(t => Models.ContainsKey(t.Model))
                .Select(t => new RouteMember(Models[t.Model], t.Priority, t.Weight))
                .OrderBy(m => vm.Strategy == RoutingStrategy.Priority ? m.Priority : 0)
                .ToArray();
            if (members.Length == 0)
            {
                continue;
            }

            routes[vm.Name] = new Route(vm.Name, true, vm.Strategy, members, vm.FallbackOn.ToFrozenSet(), vm.TtftTimeoutMs, vm.LatencyFactor,
                members[0].Model.Config.Kind);
        }

        _routes = routes.ToFrozenDictionary(StringComparer.Ordinal);
        Default = gateway.Routing.DefaultVirtualModel is { } name && _routes.TryGetValue(name, out var route) ? route : null;
    }

    public FrozenDictionary<string, RoutedModel> Models { get; }

    public Route? Default { get; }

    public IEnumerable<Route> All => _routes.Values;

    public bool TryGet(string name, out Route route) => _routes.TryGetValue(name, out route!);
}
