using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Flotilla.Mcp.Calls;

/// <summary>A tool call's arguments as guardrails, digests and idempotency see them.</summary>
internal static class ToolArguments
{
    /// <summary>The arguments as canonical JSON: object keys sorted (ordinal), no whitespace. Two calls with the same
    /// arguments in any key order have the same canonical form, hence the same digest.</summary>
    public static string Canonical(IDictionary<string, JsonElement>? arguments)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (arguments is not null)
            {
                foreach (var (name, value) in arguments.OrderBy(a => a.Key, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(name);
                    Flotilla.Governance.Json.CanonicalJson.Write(writer, value);
                }
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Lower-case hex SHA-256 of <see cref="Canonical"/>.</summary>
    public static string Sha256(string canonical) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));

    /// <summary>Every string in the arguments, depth first, in the order <see cref="Replace"/> puts them back.</summary>
    public static List<string> Strings(IDictionary<string, JsonElement>? arguments)
    {
        var texts = new List<string>();
        if (arguments is not null)
        {
            foreach (var value in arguments.Values)
            {
                Collect(value, texts);
            }
        }

        return texts;
    }

    public static void Collect(JsonElement value, List<string> texts)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                texts.Add(value.GetString()!);
                break;
            case JsonValueKind.Object:
                foreach (var property in value.EnumerateObject())
                {
                    Collect(property.Value, texts);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in value.EnumerateArray())
                {
                    Collect(item, texts);
                }

                break;
        }
    }

    /// <summary>The arguments with their strings replaced, in <see cref="Strings"/> order (a redacting guardrail's output).</summary>
    public static Dictionary<string, JsonElement> Replace(IDictionary<string, JsonElement> arguments, IReadOnlyList<string> texts)
    {
        var at = 0;
        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (name, value) in arguments)
        {
            result[name] = Rewrite(value, texts, ref at);
        }

        return result;
    }

    public static JsonElement Rewrite(JsonElement value, IReadOnlyList<string> texts, ref int at)
    {
        if (value.ValueKind is not (JsonValueKind.String or JsonValueKind.Object or JsonValueKind.Array))
        {
            return value;
        }

        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, value, texts, ref at);
        }

        return JsonDocument.Parse(buffer.ToArray()).RootElement.Clone();
    }

    private static void Write(Utf8JsonWriter writer, JsonElement value, IReadOnlyList<string> texts, ref int at)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                writer.WriteStringValue(texts[at++]);
                break;
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in value.EnumerateObject())
                {
                    writer.WritePropertyName(property.Name);
                    Write(writer, property.Value, texts, ref at);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in value.EnumerateArray())
                {
                    Write(writer, item, texts, ref at);
                }

                writer.WriteEndArray();
                break;
            default:
                value.WriteTo(writer);
                break;
        }
    }
}
