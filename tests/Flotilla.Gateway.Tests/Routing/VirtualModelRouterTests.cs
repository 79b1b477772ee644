using Flotilla.Fleet;
using Flotilla.Fleet.Loading;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;
using Flotilla.Gateway.Tests.Fakes;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Routing;

public sealed class VirtualModelRouterTests
{
    private const int Plans = 10_000;
    private readonly TargetHealthBoard _health = new(new FakeTimeProvider());

    private static RoutedModel Model(string name) => TestRoutes.Model(name, new FakeModelProvider("p-" + name).Answers());

    private static string[] Names(RouteMember[] plan) => [.. plan.Select(m => m.Model.Name)];

    [Fact]
    public void Priority_targets_are_planned_lowest_priority_first_whatever_their_declaration_order()
    {
        var loaded = FleetLoader.Parse("""
            gateway:
              providers:
                - { name: sim, type: simulated }
              models:
                - { name: m-low, provider: sim }
                - { name: m-mid, provider: sim }
                - { name: m-high, provider: sim }
              routing:
                virtual_models:
                  - name: assistant
                    strategy: priority
                    targets:
                      - { model: m-high, priority: 2 }
                      - { model: m-low, priority: 0 }
                      - { model: m-mid, priority: 1 }
            """, "fleet.yaml");
        loaded.Errors.ShouldBeEmpty();
        var table = new RouteTable(loaded.Fleet!.Gateway, new Dictionary<string, IModelProvider> { ["sim"] = new FakeModelProvider("sim") });
        table.TryGet("assistant", out var route).ShouldBeTrue();
        var router = new VirtualModelRouter(_health);

        for (var i = 0; i < 20; i++)
        {
            Names(router.Plan(route)).ShouldBe(["m-low", "m-mid", "m-high"]);
        }
    }

    [Fact]
    public void Priority_plans_do_not_depend_on_measured_speed()
    {
        var route = TestRoutes.Priority("r", Model("a"), Model("b"));
        _health.RecordLatency("a", 10_000, 1);
        _health.RecordLatency("b", 1, 1);

        Names(new VirtualModelRouter(_health).Plan(route)).ShouldBe(["a", "b"]);
    }

    [Fact]
    public void Weighted_first_choices_follow_the_weights()
    {
        var route = TestRoutes.Virtual("r", [new RouteMember(Model("light"), 0, 1), new RouteMember(Model("heavy"), 0, 3), new RouteMember(Model("off"), 0, 0)],
            RoutingStrategy.Weight);
        var router = new VirtualModelRouter(_health);
        var firsts = new Dictionary<string, int> { ["light"] = 0, ["heavy"] = 0, ["off"] = 0 };

        for (var i = 0; i < Plans; i++)
        {
            var plan = Names(router.Plan(route));
            plan.Length.ShouldBe(3);
            plan.ShouldBeUnique();
            plan[2].ShouldBe("off");
            firsts[plan[0]]++;
        }

        // Expected 2,500 and 7,500; the standard deviation is about 43, so ±300 fails only when the split is wrong.
        firsts["light"].ShouldBeInRange(2_200, 2_800);
        firsts["heavy"].ShouldBeInRange(7_200, 7_800);
        firsts["off"].ShouldBe(0);
    }

    [Fact]
    public void Weighted_fallbacks_follow_in_descending_weight()
    {
        var route = TestRoutes.Virtual("r",
            [new RouteMember(Model("w1"), 0, 1), new RouteMember(Model("w5"), 0, 5), new RouteMember(Model("w2"), 0, 2), new RouteMember(Model("w3"), 0, 3)],
            RoutingStrategy.Weight);
        var router = new VirtualModelRouter(_health);
        var seen = new HashSet<string>();

        for (var i = 0; i < 2_000; i++)
        {
            var plan = Names(router.Plan(route));
            seen.Add(plan[0]);
            var rest = plan[1..];
            rest.ShouldBe([.. new[] { "w5", "w3", "w2", "w1" }.Where(n => n != plan[0])]);
        }

        seen.ShouldBe(["w1", "w2", "w3", "w5"], ignoreOrder: true);
    }

    [Fact]
    public void Weights_that_are_all_zero_plan_in_declaration_order_without_failing()
    {
        var route = TestRoutes.Virtual("r", [new RouteMember(Model("a"), 0, 0), new RouteMember(Model("b"), 0, 0)], RoutingStrategy.Weight);

        Names(new VirtualModelRouter(_health).Plan(route)).ShouldBe(["a", "b"]);
    }

    [Fact]
    public void Latency_targets_slower_than_the_factor_are_never_first_and_come_last_fastest_first()
    {
        var route = TestRoutes.Virtual("r",
            [new RouteMember(Model("slow"), 0, 1), new RouteMember(Model("fast"), 0, 1), new RouteMember(Model("slowest"), 0, 1), new RouteMember(Model("near"), 0, 1)],
            RoutingStrategy.Latency, latencyFactor: 1.5);
        _health.RecordLatency("fast", 1_000, 100);     // 10 ms per token
        _health.RecordLatency("near", 1_400, 100);     // 14: within 1.5 × 10
        _health.RecordLatency("slow", 1_600, 100);     // 16: beyond
        _health.RecordLatency("slowest", 9_000, 100);  // 90
        var router = new VirtualModelRouter(_health);
        var firsts = new Dictionary<string, int>();

        for (var i = 0; i < Plans; i++)
        {
            var plan = Names(router.Plan(route));
            plan[2..].ShouldBe(["slow", "slowest"]);
            firsts[plan[0]] = firsts.GetValueOrDefault(plan[0]) + 1;
        }

        firsts.Keys.ShouldBe(["fast", "near"], ignoreOrder: true);
        // The candidates share the traffic evenly: 5,000 each expected (standard deviation 50).
        firsts["fast"].ShouldBeInRange(4_600, 5_400);
    }

    [Fact]
    public void Latency_unmeasured_targets_are_candidates_so_they_get_measured()
    {
        var route = TestRoutes.Virtual("r",
            [new RouteMember(Model("fast"), 0, 1), new RouteMember(Model("new"), 0, 1), new RouteMember(Model("slow"), 0, 1)],
            RoutingStrategy.Latency, latencyFactor: 2);
        _health.RecordLatency("fast", 100, 10);   // 10 ms per token
        _health.RecordLatency("slow", 500, 10);   // 50
        var router = new VirtualModelRouter(_health);
        var firsts = new HashSet<string>();

        for (var i = 0; i < 1_000; i++)
        {
            var plan = Names(router.Plan(route));
            firsts.Add(plan[0]);
            plan[2].ShouldBe("slow");
            if (plan[0] == "new")
            {
                plan[1].ShouldBe("fast");
            }
        }

        firsts.ShouldBe(["fast", "new"], ignoreOrder: true);
    }

    [Fact]
    public void Latency_with_nothing_measured_spreads_over_every_target()
    {
        var route = TestRoutes.Virtual("r", [new RouteMember(Model("a"), 0, 1), new RouteMember(Model("b"), 0, 1), new RouteMember(Model("c"), 0, 1)],
            RoutingStrategy.Latency);
        var router = new VirtualModelRouter(_health);
        var firsts = new HashSet<string>();

        for (var i = 0; i < 1_000; i++)
        {
            var plan = Names(router.Plan(route));
            plan.ShouldBe(["a", "b", "c"], ignoreOrder: true);
            firsts.Add(plan[0]);
        }

        firsts.ShouldBe(["a", "b", "c"], ignoreOrder: true);
    }

    [Fact]
    public void A_single_target_route_is_planned_as_it_is()
    {
        var route = TestRoutes.Virtual("r", [new RouteMember(Model("only"), 0, 0)], RoutingStrategy.Weight);

        Names(new VirtualModelRouter(_health).Plan(route)).ShouldBe(["only"]);
    }
}
