using System.Globalization;
using System.Text;
using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Loading;

/// <summary>
/// A YAML value as JSON text, for values the fleet passes on as JSON (a scripted tool call's arguments): mappings become
/// objects, sequences arrays; an unquoted scalar that reads as a number, true/false or null becomes one, anything else a string.
/// </summary>
internal static class YamlJson
{
    public static string ToJson(YamlNode node)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(node, writer);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Write(YamlNode node, Utf8JsonWriter writer)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                writer.WriteStartObject();
                foreach (var (key, value) in mapping.Children)
                {
                    writer.WritePropertyName(((YamlScalarNode)key).Value ?? "");
                    Write(value, writer);
                }

                writer.WriteEndObject();
                break;
            case YamlSequenceNode sequence:
                writer.WriteStartArray();
                foreach (var item in sequence.Children)
                {
                    Write(item, writer);
                }

                writer.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                var text = scalar.Value ?? "";
                if (scalar.Style is ScalarStyle.Plain or ScalarStyle.Any)
                {
                    if (text is "true" or "false")
                    {
                        writer.WriteBooleanValue(text == "true");
                        break;
                    }

                    if (text is "null" or "~" or "")
                    {
                        writer.WriteNullValue();
                        break;
                    }

                    if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                    {
                        writer.WriteNumberValue(integer);
                        break;
                    }

                    if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number))
                    {
                        writer.WriteNumberValue(number);
                        break;
                    }
                }

                writer.WriteStringValue(text);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }
}
