using System.Text.Json.Serialization;

namespace Flotilla.Guardrails.Webhook;

/// <summary>What Flotilla POSTs to a webhook guardrail.</summary>
internal sealed record WebhookRequest(string Hook, string Guardrail, string Agent, string? Team, IReadOnlyList<string> Texts);

/// <summary>What a webhook guardrail answers: <c>{"action":"allow"|"block"|"redact","reason":"…","texts":[…]}</c>.</summary>
internal sealed record WebhookResponse(string? Action, string? Reason, List<string>? Texts);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    PropertyNameCaseInsensitive = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WebhookRequest))]
[JsonSerializable(typeof(WebhookResponse))]
internal sealed partial class WebhookJson : JsonSerializerContext;
