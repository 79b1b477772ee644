using System.Collections.Frozen;
using Flotilla.Fleet;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;

namespace Flotilla.Gateway.Tests.Routing;

/// <summary>Routes built directly from records, for router and dispatcher tests.</summary>
internal static class TestRoutes
{
    public static RoutedModel Model(string name, IModelProvider provider) =>
        new(new ModelConfig(name, provider.Config.Name, name + "-upstream", ModelPrice.Free, null, ModelKind.Chat, default), provider);

    public static Route Virtual(
        string name,
        RouteMember[] members,
        RoutingStrategy strategy = RoutingStrategy.Priority,
        int[]? fallbackOn = null,
        int? ttftTimeoutMs = null,
        double latencyFactor = 1.5) =>
        new(name, true, strategy, members, (fallbackOn ?? [.. VirtualModelConfig.DefaultFallbackOn]).ToFrozenSet(), ttftTimeoutMs, latencyFactor, ModelKind.Chat);

    /// <summary>Targets in priority order.</summary>
    public static Route Priority(string name, params RoutedModel[] models) =>
        Virtual(name, [.. models.Select((m, i) => new RouteMember(m, i, 1))]);

    public static RoutingConfig Routing(int retries = 2, int baseDelayMs = 100, int maxDelayMs = 5_000, int cooldownFailures = 3, int cooldownSeconds = 30) =>
        RoutingConfig.Default with
        {
            Retries = new RetryConfig(retries, [429, 500, 502, 503], baseDelayMs, maxDelayMs),
            Cooldown = new CooldownConfig(cooldownFailures, cooldownSeconds),
        };
}
