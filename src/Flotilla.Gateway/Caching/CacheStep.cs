using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Pipeline;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;

namespace Flotilla.Gateway.Caching;

/// <summary>Where a call's answer sits in the cache: the namespace, the exact key, and the embedding for similar lookups.</summary>
internal sealed record CacheKey(string Space, ulong Hash, float[]? Vector);

/// <summary>
/// The cache policy on the governed path: look the call up before the budget (a hit costs nothing and skips the upstream),
/// and store a fresh answer when it settles. Chat calls only; <c>no-store</c> opts out, <c>no-cache</c> skips the lookup.
/// </summary>
internal sealed class CacheStep(TimeProvider time)
{
    /// <summary>The cached answer, or null (the call is then a miss and its key is kept for <see cref="Store"/>).</summary>
    public async ValueTask<CachedAnswer?> LookupAsync(ModelCall call, CancellationToken cancellationToken)
    {
        if (call.Runtime.Cache is not { } cache || call.Kind != CallKind.Chat || call.CacheControl == CacheControl.NoStore)
        {
            return null;
        }

        call.CacheKey = await KeyAsync(call, cache, cancellationToken);
        if (call.CacheControl != CacheControl.NoCache
            && (cache.GetExact(call.CacheKey.Space, call.CacheKey.Hash) ?? (call.CacheKey.Vector is { } vector ? cache.GetSimilar(call.CacheKey.Space, vector) : null)) is { } hit)
        {
            call.CacheState = "hit";
            call.CachedModel = hit.Model;
            return hit;
        }

        call.CacheState = "miss";
        return null;
    }

    /// <summary>Stores a fresh answer under the key the lookup made. Tool-call answers only when the fleet says so.</summary>
    public void Store(ModelCall call, byte[] completion, string model)
    {
        if (call.CacheKey is not { } key || call.Runtime.Cache is not { } cache)
        {
            return;
        }

        if (!cache.Config.CacheToolCalls && completion.AsSpan().IndexOf("\"tool_calls\""u8) >= 0)
        {
            return;
        }

        cache.Put(key.Space, key.Hash, key.Vector, new CachedAnswer(completion, model, call.Usage, time.GetUtcNow()));
    }

    private static async Task<CacheKey> KeyAsync(ModelCall call, IResponseCache cache, CancellationToken cancellationToken)
    {
        var config = cache.Config;
        var agent = call.Caller!.Agent;
        var route = call.Route!;
        var request = call.Request!;
        var space = config.NamespacePer switch
        {
            CacheNamespace.Agent => "agent:" + agent.Name,
            CacheNamespace.Team => "team:" + agent.Owner,
            _ => "shared",
        } + call.Runtime.CacheScope;
        if (call.Ingress != IngressFormat.ChatCompletions)
        {
            // Answers keep what only their own wire format shows (an Anthropic target's thinking), so formats do not share them.
            space += "|" + call.Operation;
        }

        var hash = ResponseCache.ExactKey(route.Name, request.Document);
        float[]? vector = null;
        if (config.Type == CacheType.Semantic)
        {
            // Similar conversations answer each other only under the same model and parameters (tools, temperature, ...).
            space += "|" + ResponseCache.ParametersKey(route.Name, request.Document).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
            // The conversation is embedded with the configured model, or locally when none is configured.
            var text = route.Name + "\n" + ResponseCache.ConversationText(request.Document);
            vector = config.EmbeddingModel is { } model && call.Runtime.Routes.TryGet(model, out var embeddingRoute)
                ? await EmbedAsync(call.Runtime, embeddingRoute, text, cancellationToken)
                : Providers.Simulated.SimulatedProvider.Embed(text, ResponseCache.IndexDimensions);
            vector = vector is null ? null : ResponseCache.Project(vector);
        }

        return new CacheKey(space, hash, vector);
    }

    private static async Task<float[]?> EmbedAsync(GatewayRuntime runtime, Route route, string text, CancellationToken cancellationToken)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new EmbeddingProbe(route.Name, text), GatewayJsonContext.Default.EmbeddingProbe));
        var result = await runtime.Dispatcher.DispatchAsync(CallKind.Embeddings, ChatRequest.ParseEmbeddings(body), route, cancellationToken);
        await using var reply = result.Reply;
        if (!reply.IsSuccess || reply.Body is null)
        {
            return null; // No vector: the call goes ahead uncached rather than fail.
        }

        using var document = JsonDocument.Parse(reply.Body);
        var embedding = document.RootElement.GetProperty("data")[0].GetProperty("embedding");
        if (embedding.ValueKind == JsonValueKind.String)
        {
            var bytes = embedding.GetBytesFromBase64();
            var floats = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, floats, 0, floats.Length * 4);
            return floats;
        }

        return embedding.EnumerateArray().Select(e => e.GetSingle()).ToArray();
    }
}
