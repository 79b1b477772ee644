using System.Text.Json.Nodes;

namespace Flotilla.Testing;

// Anthropic's Messages API: https://docs.anthropic.com/en/api/messages and .../messages-streaming
public sealed partial class FakeUpstream
{
    /// <summary>The text Claude-like answers put before a tool call.</summary>
    public const string ToolLeadIn = "Let me check.";

    /// <summary>The signature of the thinking block an answer with <see cref="UpstreamBehaviour.Thinking"/> carries.</summary>
    public const string ThinkingSignature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxJuR4/sig==";

    private Decision DecideAnthropic(JsonNode request, UpstreamBehaviour behaviour)
    {
        var model = StringOf(request["model"]) ?? "unknown";
        var last = (request["messages"] as JsonArray)?.LastOrDefault();
        if (last?["content"] is JsonArray blocks && blocks.FirstOrDefault(b => StringOf(b?["type"]) == "tool_result") is { } result)
        {
            return new Decision(model, behaviour.Text ?? $"The tool said: {TextOf(result["content"])}", null, null);
        }

        if (request["tools"] is JsonArray { Count: > 0 } tools && StringOf(request["tool_choice"]?["type"]) != "none"
            && StringOf(tools[0]?["name"]) is { } name)
        {
            return new Decision(model, behaviour.Text ?? ToolLeadIn, name, behaviour.ToolArguments ?? DefaultToolArguments);
        }

        return new Decision(model, behaviour.Text ?? DefaultText(model), null, null);
    }

    private JsonObject AnthropicMessage(JsonNode request, UpstreamBehaviour behaviour)
    {
        var decision = DecideAnthropic(request, behaviour);
        var content = new JsonArray();
        if (behaviour.Thinking is not null)
        {
            content.Add(new JsonObject { ["type"] = "thinking", ["thinking"] = behaviour.Thinking, ["signature"] = ThinkingSignature });
        }

        if (decision.Text is not null)
        {
            content.Add(new JsonObject { ["type"] = "text", ["text"] = decision.Text });
        }

        if (decision.ToolName is not null)
        {
            content.Add(new JsonObject
            {
                ["type"] = "tool_use",
                ["id"] = NextId("toolu_"),
                ["name"] = decision.ToolName,
                ["input"] = JsonNode.Parse(decision.ToolArguments!),
            });
        }

        return new JsonObject
        {
            ["id"] = NextId("msg_"),
            ["type"] = "message",
            ["role"] = "assistant",
            ["model"] = decision.Model,
            ["content"] = content,
            ["stop_reason"] = decision.ToolName is null ? "end_turn" : "tool_use",
            ["stop_sequence"] = null,
            ["usage"] = new JsonObject { ["input_tokens"] = PromptTokens, ["output_tokens"] = CompletionTokens },
        };
    }

    /// <summary>message_start, a text block and/or a tool_use block (start, deltas, stop), message_delta, message_stop.</summary>
    private List<(string? Name, string Data)> AnthropicEvents(JsonNode request, UpstreamBehaviour behaviour)
    {
        var decision = DecideAnthropic(request, behaviour);
        var events = new List<(string? Name, string Data)>();
        void Event(string type, JsonObject fields)
        {
            // "type" first, as Anthropic writes it.
            var data = new JsonObject { ["type"] = type };
            foreach (var (key, value) in fields.ToList())
            {
                fields.Remove(key);
                data[key] = value;
            }

            events.Add((type, data.ToJsonString()));
        }

        Event("message_start", new JsonObject
        {
            ["message"] = new JsonObject
            {
                ["id"] = NextId("msg_"),
                ["type"] = "message",
                ["role"] = "assistant",
                ["model"] = decision.Model,
                ["content"] = new JsonArray(),
                ["stop_reason"] = null,
                ["stop_sequence"] = null,
                ["usage"] = new JsonObject { ["input_tokens"] = PromptTokens, ["output_tokens"] = 1 },
            },
        });
        var index = 0;
        if (behaviour.Thinking is not null)
        {
            Event("content_block_start", new JsonObject { ["index"] = index, ["content_block"] = new JsonObject { ["type"] = "thinking", ["thinking"] = "" } });
            foreach (var word in Words(behaviour.Thinking))
            {
                Event("content_block_delta", new JsonObject { ["index"] = index, ["delta"] = new JsonObject { ["type"] = "thinking_delta", ["thinking"] = word } });
            }

            Event("content_block_delta", new JsonObject { ["index"] = index, ["delta"] = new JsonObject { ["type"] = "signature_delta", ["signature"] = ThinkingSignature } });
            Event("content_block_stop", new JsonObject { ["index"] = index });
            index++;
        }

        if (decision.Text is not null)
        {
            Event("content_block_start", new JsonObject { ["index"] = index, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" } });
            foreach (var word in Words(decision.Text))
            {
                Event("content_block_delta", new JsonObject { ["index"] = index, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = word } });
            }

            Event("content_block_stop", new JsonObject { ["index"] = index });
            index++;
        }

        if (decision.ToolName is not null)
        {
            Event("content_block_start", new JsonObject
            {
                ["index"] = index,
                ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = NextId("toolu_"), ["name"] = decision.ToolName, ["input"] = new JsonObject() },
            });
            foreach (var piece in Pieces(decision.ToolArguments!, 8).Prepend(""))
            {
                Event("content_block_delta", new JsonObject
                {
                    ["index"] = index,
                    ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = piece },
                });
            }

            Event("content_block_stop", new JsonObject { ["index"] = index });
        }

        Event("message_delta", new JsonObject
        {
            ["delta"] = new JsonObject { ["stop_reason"] = decision.ToolName is null ? "end_turn" : "tool_use", ["stop_sequence"] = null },
            ["usage"] = new JsonObject { ["output_tokens"] = CompletionTokens },
        });
        Event("message_stop", new JsonObject());
        return events;
    }
}
