using Flotilla.Fleet;
using Flotilla.Governance.Alerts;
using Flotilla.Governance.Budgets;
using Flotilla.Governance.Fleet;
using Flotilla.Governance.Identity;
using Flotilla.Governance.Traces;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Governance;

public static class GovernanceServiceCollectionExtensions
{
    /// <summary>
    /// Registers what every governed call shares: the live fleet (starting with <paramref name="fleet"/>), agent keys, the
    /// trace writer and its retention, alerts and the budget step. Needs an <see cref="Storage.Traces.ITraceStore"/>, a
    /// <see cref="Storage.Traces.TraceJournal"/>, an <see cref="Storage.Usage.IUsageStore"/>, an <see cref="Storage.Alerts.IAlertStore"/>,
    /// an <see cref="Storage.Keys.IAgentKeyStore"/> and a <see cref="TimeProvider"/> in the container.
    /// </summary>
    public static IServiceCollection AddGovernance(this IServiceCollection services, FleetConfig fleet)
    {
        services.AddSingleton(sp => new LiveFleet(fleet, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<AgentKeyRing>();
        services.AddSingleton<TraceWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<TraceWriter>());
        services.AddSingleton<TraceRetention>();
        services.AddHostedService(sp => sp.GetRequiredService<TraceRetention>());
        services.AddSingleton<AlertDispatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<AlertDispatcher>());
        services.AddSingleton<BudgetStep>();
        return services;
    }
}
