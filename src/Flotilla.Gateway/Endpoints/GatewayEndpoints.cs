using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Flotilla.Gateway.Endpoints;

public static class GatewayEndpoints
{
    /// <summary>Maps the model surface: chat completions, Anthropic messages, OpenAI responses, embeddings, models.</summary>
    public static IEndpointRouteBuilder MapAiGateway(this IEndpointRouteBuilder endpoints)
    {
        var handler = endpoints.ServiceProvider.GetRequiredService<GatewayHandler>();
        endpoints.MapPost("/v1/chat/completions", handler.ChatAsync);
        endpoints.MapPost("/v1/embeddings", handler.EmbeddingsAsync);
        endpoints.MapPost("/v1/messages", handler.MessagesAsync);
        endpoints.MapPost("/v1/messages/count_tokens", handler.CountTokensAsync);
        endpoints.MapPost("/v1/responses", handler.ResponsesAsync);
        endpoints.MapGet("/v1/models", handler.ModelsAsync);
        // Anything else under /v1 is answered in OpenAI's error format, not with an empty 404.
        endpoints.MapFallback("/v1/{**path}", (Microsoft.AspNetCore.Http.HttpContext context) => Errors.ErrorWriter.WriteAsync(context,
            new GatewayException(404, "invalid_request_error", "unknown_endpoint",
                $"{context.Request.Method} {Flotilla.Fleet.DisplayText.Safe(context.Request.Path.Value ?? "", 200)} is not an endpoint here; " +
                "Flotilla serves POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, POST /v1/embeddings and GET /v1/models.")));
        return endpoints;
    }
}
