using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Gateway.Endpoints;

public static class GatewayEndpoints
{
    /// <summary>Maps the OpenAI-compatible surface: chat completions, embeddings, models.</summary>
    public static IEndpointRouteBuilder MapAiGateway(this IEndpointRouteBuilder endpoints)
    {
        var handler = endpoints.ServiceProvider.GetRequiredService<GatewayHandler>();
        endpoints.MapPost("/v1/chat/completions", handler.ChatAsync);
        endpoints.MapPost("/v1/embeddings", handler.EmbeddingsAsync);
        endpoints.MapGet("/v1/models", handler.ModelsAsync);
        return endpoints;
    }
}
