using Flotilla.Fleet;

namespace Flotilla.Gateway.Routing;

/// <summary>
/// Orders a route's targets for one call. The first is the one tried first; the rest are the fallback order.
/// <list type="bullet">
/// <item>priority: ascending priority (declaration order among equals).</item>
/// <item>weight: one target drawn at random in proportion to its weight, then the others by descending weight.</item>
/// <item>latency: targets whose recent time per output token is within <c>latency_factor</c> of the fastest share the
/// traffic evenly (targets not measured yet are included so they get measured); slower targets follow, fastest first.</item>
/// </list>
/// </summary>
internal sealed class VirtualModelRouter(ITargetHealth health)
{
    public RouteMember[] Plan(Route route)
    {
        var members = route.Members;
        if (members.Length == 1 || route.Strategy == RoutingStrategy.Priority)
        {
            return members;
        }

        return route.Strategy == RoutingStrategy.Weight ? PlanByWeight(members) : PlanByLatency(members, route.LatencyFactor);
    }

    private static RouteMember[] PlanByWeight(RouteMember[] members)
    {
        var total = members.Sum(m => m.Weight);
        var plan = members.OrderByDescending(m => m.Weight).ToArray();
        if (total <= 0)
        {
            return plan;
        }

        var draw = Random.Shared.NextDouble() * total;
        for (var i = 0; i < plan.Length; i++)
        {
            draw -= plan[i].Weight;
            if (draw < 0 && plan[i].Weight > 0)
            {
                (plan[0], plan[i]) = (plan[i], plan[0]);
                // Keep the remaining fallbacks in descending weight.
                Array.Sort(plan, 1, plan.Length - 1, Comparer<RouteMember>.Create((a, b) => b.Weight.CompareTo(a.Weight)));
                break;
            }
        }

        return plan;
    }

    private RouteMember[] PlanByLatency(RouteMember[] members, double factor)
    {
        var measured = members.Select(m => (Member: m, Speed: health.MsPerToken(m.Model.Name))).ToArray();
        var fastest = measured.Where(m => !double.IsNaN(m.Speed)).Select(m => m.Speed).DefaultIfEmpty(double.NaN).Min();
        var candidates = measured.Where(m => double.IsNaN(m.Speed) || double.IsNaN(fastest) || m.Speed <= fastest * factor).Select(m => m.Member).ToList();
        var slower = measured.Where(m => !candidates.Contains(m.Member)).OrderBy(m => m.Speed).Select(m => m.Member);
        var first = candidates[Random.Shared.Next(candidates.Count)];
        var rest = candidates.Where(c => c != first)
            .OrderBy(c => double.IsNaN(health.MsPerToken(c.Model.Name)) ? double.MaxValue : health.MsPerToken(c.Model.Name));
        return [first, .. rest, .. slower];
    }
}
