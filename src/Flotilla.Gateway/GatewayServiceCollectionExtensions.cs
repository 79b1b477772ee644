using Flotilla.Fleet;
using Flotilla.Gateway.Endpoints;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Traces;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Gateway;

public static class GatewayServiceCollectionExtensions
{
    /// <summary>
    /// Registers the AI gateway for <paramref name="fleet"/>. Needs an <see cref="Storage.Traces.ITraceStore"/>,
    /// a <see cref="Storage.Traces.TraceJournal"/>, an <see cref="Storage.Usage.IUsageStore"/>,
    /// an <see cref="Storage.Keys.IAgentKeyStore"/>, an <see cref="Storage.Responses.IResponseStore"/> and a <see cref="TimeProvider"/> in the container.
    /// </summary>
    public static IServiceCollection AddAiGateway(this IServiceCollection services, FleetConfig fleet)
    {
        services.AddGovernance(fleet);
        services.AddMetrics();
        services.AddSingleton<Telemetry.GatewayMetrics>();
        services.AddSingleton(_ => UpstreamHttp.CreateInvoker());
        services.AddSingleton(sp => new FleetState(sp.GetRequiredService<LiveFleet>(), sp.GetRequiredService<HttpMessageInvoker>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Telemetry.GatewayMetrics>(), sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<FleetState>>()));
        services.AddSingleton<Caching.CacheStep>();
        services.AddSingleton<TraceStep>();
        services.AddSingleton<Pipeline.ModelCallPipeline>();
        services.AddSingleton(sp => new Pipeline.GovernedModelCalls(sp.GetRequiredService<Pipeline.ModelCallPipeline>(), sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<Endpoints.Responses.ResponseHistory>();
        services.AddHostedService(sp => sp.GetRequiredService<Endpoints.Responses.ResponseHistory>());
        services.AddSingleton<GatewayHandler>();
        return services;
    }
}
