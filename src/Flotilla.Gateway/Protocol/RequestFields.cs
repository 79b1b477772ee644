using System.Text.Json;
using Flotilla.Gateway.Errors;

namespace Flotilla.Gateway.Protocol;

/// <summary>
/// The field checks every request translator makes (Anthropic Messages and OpenAI Responses in, Anthropic Messages out):
/// one wording for each mistake, a 400 naming the offending field.
/// </summary>
internal static class RequestFields
{
    /// <summary>A property that is present and not null: clients send null to mean "not set".</summary>
    public static bool TryGet(JsonElement element, string name, out JsonElement value) =>
        element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    /// <summary>The <c>type</c> of a block, part, item or tool; a 400 when there is none.</summary>
    public static string Type(JsonElement element, string param) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
            ? type.GetString()!
            : throw BadRequest($"{param} must be an object with a 'type'.", $"{param}.type");

    /// <summary>A required string property; a 400 naming it when it is missing or not a string.</summary>
    public static string String(JsonElement element, string name, string param) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw BadRequest($"{param}.{name} is required and must be a string.", $"{param}.{name}");

    /// <summary>Copies an optional numeric property (<c>temperature</c>, <c>top_p</c>) as it is; a 400 when it is not a number.</summary>
    public static void CopyNumber(JsonElement request, string name, Utf8JsonWriter writer)
    {
        if (!TryGet(request, name, out var value))
        {
            return;
        }

        if (value.ValueKind != JsonValueKind.Number)
        {
            throw BadRequest($"'{name}' must be a number.", name);
        }

        writer.WritePropertyName(name);
        value.WriteTo(writer);
    }

    public static GatewayException BadRequest(string message, string? param) =>
        GatewayException.BadRequest(ErrorCodes.InvalidRequest, message, param);
}
