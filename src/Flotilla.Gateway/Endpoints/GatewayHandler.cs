using System.Buffers;
using System.Text.Json;
using Flotilla.Gateway.Endpoints.Messages;
using Flotilla.Gateway.Endpoints.Responses;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Endpoints;

/// <summary>The model endpoints (Chat Completions, Messages, Responses, embeddings, models): thin adapters that run each call through the <see cref="ModelCallPipeline"/>.</summary>
internal sealed class GatewayHandler(FleetState fleet, AgentKeyRing keys, ModelCallPipeline pipeline, ResponseHistory responses, TimeProvider time)
{
    public Task ChatAsync(HttpContext context) => RunAsync(context, CallKind.Chat);

    public Task EmbeddingsAsync(HttpContext context) => RunAsync(context, CallKind.Embeddings);

    private Task RunAsync(HttpContext context, CallKind kind) =>
        pipeline.RunAsync(pipeline.Begin(kind, context.Request.Headers), new HttpIngress(context, keys, time));

    /// <summary><c>POST /v1/messages</c>: Anthropic's Messages API on the same governed path.</summary>
    public Task MessagesAsync(HttpContext context) =>
        pipeline.RunAsync(pipeline.Begin(CallKind.Chat, context.Request.Headers, IngressFormat.Messages), new MessagesIngress(context, keys, time));

    /// <summary><c>POST /v1/responses</c>: OpenAI's Responses API on the same governed path.</summary>
    public Task ResponsesAsync(HttpContext context) =>
        pipeline.RunAsync(pipeline.Begin(CallKind.Chat, context.Request.Headers, IngressFormat.Responses), new ResponsesIngress(context, keys, responses, time));

    /// <summary><c>POST /v1/messages/count_tokens</c>, answered locally with the estimate budgets and rate limits use.</summary>
    public async Task CountTokensAsync(HttpContext context)
    {
        var runtime = fleet.Current;
        try
        {
            HttpIngress.Authenticate(context, runtime, keys, acceptApiKeyHeader: true);
            var body = await HttpIngress.ReadBodyAsync(context, runtime.MaxRequestBodyBytes);
            var request = MessagesRequestTranslator.Read(body, countOnly: true);
            var tokens = TokenEstimator.EstimateInput(request);
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync($"{{\"input_tokens\":{tokens}}}", context.RequestAborted);
        }
        catch (GatewayException e)
        {
            await MessagesIngress.WriteErrorAsync(context, e);
        }
    }

    public async Task ModelsAsync(HttpContext context)
    {
        var runtime = fleet.Current;
        try
        {
            HttpIngress.Authenticate(context, runtime, keys);
        }
        catch (GatewayException e)
        {
            await ErrorWriter.WriteAsync(context, e);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("object", "list");
            writer.WriteStartArray("data");
            foreach (var route in runtime.Routes.All.OrderBy(r => r.IsVirtual ? 0 : 1).ThenBy(r => r.Name, StringComparer.Ordinal))
            {
                writer.WriteStartObject();
                writer.WriteString("id", route.Name);
                writer.WriteString("object", "model");
                writer.WriteNumber("created", 0);
                writer.WriteString("owned_by", route.IsVirtual ? "flotilla" : route.Members[0].Model.Provider.Config.Name);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        context.Response.ContentType = "application/json";
        await context.Response.BodyWriter.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }

}
