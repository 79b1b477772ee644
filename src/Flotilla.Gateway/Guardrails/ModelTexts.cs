using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Flotilla.Gateway.Guardrails;

/// <summary>Where a checked text lives in a request or answer, so a redacted text can be written back in its place.</summary>
internal readonly record struct TextSlot(int Message, int Part, bool Arguments, int ToolCall);

/// <summary>
/// The texts guardrails look at on the model path: every message's content (text parts included) and tool-call
/// arguments in a request; the answer's content and tool-call arguments in a completion.
/// </summary>
internal static class ModelTexts
{
    public static (List<string> Texts, List<TextSlot> Slots) FromRequest(JsonElement request)
    {
        var texts = new List<string>();
        var slots = new List<TextSlot>();
        if (request.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            var m = 0;
            foreach (var message in messages.EnumerateArray())
            {
                Collect(message, m++, texts, slots);
            }
        }

        return (texts, slots);
    }

    public static (List<string> Texts, List<TextSlot> Slots) FromCompletion(ReadOnlySpan<byte> completion)
    {
        var texts = new List<string>();
        var slots = new List<TextSlot>();
        using var document = JsonDocument.Parse(completion.ToArray());
        if (document.RootElement.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array)
        {
            var c = 0;
            foreach (var choice in choices.EnumerateArray())
            {
                if (choice.TryGetProperty("message", out var message))
                {
                    Collect(message, c, texts, slots);
                }

                c++;
            }
        }

        return (texts, slots);
    }

    private static void Collect(JsonElement message, int index, List<string> texts, List<TextSlot> slots)
    {
        if (message.TryGetProperty("content", out var content))
        {
            if (content.ValueKind == JsonValueKind.String)
            {
                texts.Add(RequestTexts.Get(content));
                slots.Add(new TextSlot(index, -1, false, -1));
            }
            else if (content.ValueKind == JsonValueKind.Array)
            {
                var p = 0;
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        texts.Add(RequestTexts.Get(text));
                        slots.Add(new TextSlot(index, p, false, -1));
                    }

                    p++;
                }
            }
        }

        if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
        {
            var t = 0;
            foreach (var call in calls.EnumerateArray())
            {
                if (call.TryGetProperty("function", out var function) && function.TryGetProperty("arguments", out var arguments)
                    && arguments.ValueKind == JsonValueKind.String)
                {
                    texts.Add(RequestTexts.Get(arguments));
                    slots.Add(new TextSlot(index, -1, true, t));
                }

                t++;
            }
        }
    }

    /// <summary>Writes redacted texts back into a request body (<c>messages</c>) or a completion (<c>choices[].message</c>).</summary>
    public static byte[] Apply(byte[] json, IReadOnlyList<TextSlot> slots, IReadOnlyList<string> texts, bool completion)
    {
        var root = JsonNode.Parse(json)!.AsObject();
        for (var i = 0; i < slots.Count; i++)
        {
            var slot = slots[i];
            var message = completion ? root["choices"]![slot.Message]!["message"]! : root["messages"]![slot.Message]!;
            if (slot.Arguments)
            {
                message["tool_calls"]![slot.ToolCall]!["function"]!["arguments"] = texts[i];
            }
            else if (slot.Part >= 0)
            {
                message["content"]![slot.Part]!["text"] = texts[i];
            }
            else
            {
                message["content"] = texts[i];
            }
        }

        return Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
    }
}
