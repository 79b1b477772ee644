using System.Buffers.Binary;
using System.Text.Json.Nodes;

namespace Flotilla.Testing;

// The OpenAI wire format: https://platform.openai.com/docs/api-reference/chat
public sealed partial class FakeUpstream
{
    private Decision DecideOpenAI(JsonNode request, UpstreamBehaviour behaviour)
    {
        var model = StringOf(request["model"]) ?? "unknown";
        var last = (request["messages"] as JsonArray)?.LastOrDefault();
        if (StringOf(last?["role"]) == "tool")
        {
            return new Decision(model, behaviour.Text ?? $"The tool said: {TextOf(last?["content"])}", null, null);
        }

        if (request["tools"] is JsonArray { Count: > 0 } tools && StringOf(request["tool_choice"]) != "none"
            && StringOf(tools[0]?["function"]?["name"]) is { } name)
        {
            return new Decision(model, null, name, behaviour.ToolArguments ?? DefaultToolArguments);
        }

        return new Decision(model, behaviour.Text ?? DefaultText(model), null, null);
    }

    private JsonObject OpenAICompletion(JsonNode request, UpstreamBehaviour behaviour)
    {
        var decision = DecideOpenAI(request, behaviour);
        var message = new JsonObject { ["role"] = "assistant", ["content"] = decision.Text };
        if (decision.ToolName is not null)
        {
            message["tool_calls"] = new JsonArray(new JsonObject
            {
                ["id"] = NextId("call_"),
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = decision.ToolName, ["arguments"] = decision.ToolArguments },
            });
        }

        return new JsonObject
        {
            ["id"] = NextId("chatcmpl-"),
            ["object"] = "chat.completion",
            ["created"] = 1_700_000_000,
            ["model"] = decision.Model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["finish_reason"] = decision.ToolName is null ? "stop" : "tool_calls",
            }),
            ["usage"] = OpenAIUsage(),
        };
    }

    /// <summary>Role chunk, content or tool call pieces, finish chunk, the usage chunk when asked for, then <c>[DONE]</c>.</summary>
    private List<(string? Name, string Data)> OpenAIChunks(JsonNode request, UpstreamBehaviour behaviour)
    {
        var decision = DecideOpenAI(request, behaviour);
        var id = NextId("chatcmpl-");
        var events = new List<(string? Name, string Data)>();
        void Chunk(JsonObject? delta, string? finish, bool usage = false)
        {
            var chunk = new JsonObject
            {
                ["id"] = id,
                ["object"] = "chat.completion.chunk",
                ["created"] = 1_700_000_000,
                ["model"] = decision.Model,
                ["choices"] = usage
                    ? new JsonArray()
                    : new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta ?? new JsonObject(), ["finish_reason"] = finish }),
            };
            if (usage)
            {
                chunk["usage"] = OpenAIUsage();
            }

            events.Add((null, chunk.ToJsonString()));
        }

        Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null);
        foreach (var word in Words(decision.Text ?? ""))
        {
            Chunk(new JsonObject { ["content"] = word }, null);
        }

        if (decision.ToolName is not null)
        {
            Chunk(new JsonObject
            {
                ["tool_calls"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["id"] = NextId("call_"),
                    ["type"] = "function",
                    ["function"] = new JsonObject { ["name"] = decision.ToolName, ["arguments"] = "" },
                }),
            }, null);
            foreach (var piece in Pieces(decision.ToolArguments!, 8))
            {
                Chunk(new JsonObject
                {
                    ["tool_calls"] = new JsonArray(new JsonObject { ["index"] = 0, ["function"] = new JsonObject { ["arguments"] = piece } }),
                }, null);
            }
        }

        Chunk(null, decision.ToolName is null ? "stop" : "tool_calls");
        if (request["stream_options"]?["include_usage"] is JsonValue include && include.TryGetValue<bool>(out var on) && on)
        {
            Chunk(null, null, usage: true);
        }

        events.Add((null, "[DONE]"));
        return events;
    }

    private static JsonObject OpenAIEmbeddings(JsonNode request)
    {
        var count = request["input"] is JsonArray inputs ? inputs.Count : 1;
        var base64 = StringOf(request["encoding_format"]) == "base64";
        var data = new JsonArray();
        for (var i = 0; i < count; i++)
        {
            JsonNode vector;
            if (base64)
            {
                var bytes = new byte[EmbeddingVector.Count * sizeof(float)];
                for (var j = 0; j < EmbeddingVector.Count; j++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(j * sizeof(float)), EmbeddingVector[j]);
                }

                vector = Convert.ToBase64String(bytes);
            }
            else
            {
                vector = new JsonArray([.. EmbeddingVector.Select(v => (JsonNode?)v)]);
            }

            data.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = vector });
        }

        return new JsonObject
        {
            ["object"] = "list",
            ["data"] = data,
            ["model"] = StringOf(request["model"]) ?? "unknown",
            ["usage"] = new JsonObject { ["prompt_tokens"] = PromptTokens, ["total_tokens"] = PromptTokens },
        };
    }

    private static JsonObject OpenAIUsage() => new()
    {
        ["prompt_tokens"] = PromptTokens,
        ["completion_tokens"] = CompletionTokens,
        ["total_tokens"] = PromptTokens + CompletionTokens,
    };
}
