using System.Text.Json.Serialization;

namespace Flotilla.Gateway.Protocol;

/// <summary>The body of the embeddings call a semantic cache makes for itself.</summary>
internal sealed record EmbeddingProbe(string Model, string Input);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(EmbeddingProbe))]
internal sealed partial class GatewayJsonContext : JsonSerializerContext;
