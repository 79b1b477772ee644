using System.Text.Json;

namespace Flotilla.Gateway.Protocol;

/// <summary>Reads <c>usage</c> from OpenAI-format JSON without building a DOM.</summary>
internal static class UsageReader
{
    /// <summary>
    /// Finds the top-level <c>usage</c> object of a response or chunk. Returns false when the JSON is invalid;
    /// <paramref name="usage"/> is zero when the object has no usage.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> json, out TokenUsage usage, out bool hasUsage)
    {
        usage = default;
        hasUsage = false;
        var reader = new Utf8JsonReader(json);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        hasUsage = true;
                        usage = ReadUsageObject(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            return reader.TokenType == JsonTokenType.EndObject && !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static TokenUsage ReadUsageObject(ref Utf8JsonReader reader)
    {
        long input = 0, output = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            // Some upstreams send null counts: TryGetInt64 throws on anything but a number, so check the token first.
            if (reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8))
            {
                reader.Read();
                input = ReadCount(ref reader);
            }
            else if (reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8))
            {
                reader.Read();
                output = ReadCount(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return new TokenUsage(input, output);
    }

    private static long ReadCount(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var count))
        {
            return count;
        }

        reader.Skip();
        return 0;
    }
}
