using System.Text.Json;

namespace Flotilla.Governance.Json;

/// <summary>
/// JSON written so that equal values are equal bytes: object properties sorted (ordinal), no whitespace, arrays in
/// order. Used where a value is compared or hashed: cache keys, tool-call argument digests, approvals.
/// </summary>
public static class CanonicalJson
{
    /// <param name="trimStrings">Trim whitespace at the ends of every string (cache keys: it does not change the question).</param>
    public static void Write(Utf8JsonWriter writer, JsonElement value, bool trimStrings = false)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in value.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    Write(writer, property.Value, trimStrings);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                {
                    Write(writer, item, trimStrings);
                }

                writer.WriteEndArray();
                break;
            case JsonValueKind.String when trimStrings:
                writer.WriteStringValue(value.GetString()!.Trim());
                break;
            default:
                value.WriteTo(writer);
                break;
        }
    }
}
