using System.Net;
using System.Text.Json.Nodes;
using Flotilla.Gateway.Tests.EndToEnd;

namespace Flotilla.Gateway.Tests.Providers;

/// <summary>A simulated model with a <c>script</c> answers a conversation with the step its number of assistant turns points at.</summary>
public sealed class ScriptedModelTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Fleet = """
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - name: scripted
              provider: sim
              script:
                - { tool: files__read_text_file, args: { path: "notes/todo.md", head: 5, verbose: false } }
                - { last_tool_result: true }
                - { text: "All done." }
        """;

    [Fact]
    public async Task Each_turn_takes_the_next_step_of_the_script()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Read the todo list." });

        var first = await AskAsync(host, messages);
        var call = first["tool_calls"]![0]!;
        call["function"]!["name"]!.GetValue<string>().ShouldBe("files__read_text_file");
        JsonNode.DeepEquals(JsonNode.Parse(call["function"]!["arguments"]!.GetValue<string>()), JsonNode.Parse("""{"path":"notes/todo.md","head":5,"verbose":false}""")).ShouldBeTrue();

        messages.Add(first.DeepClone());
        messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = call["id"]!.GetValue<string>(), ["content"] = "- ship v2" });
        (await AskAsync(host, messages))["content"]!.GetValue<string>().ShouldBe("- ship v2");

        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = "- ship v2" });
        messages.Add(new JsonObject { ["role"] = "user", ["content"] = "Anything else?" });
        (await AskAsync(host, messages))["content"]!.GetValue<string>().ShouldBe("All done.");
    }

    private static async Task<JsonNode> AskAsync(GatewayHost host, JsonArray messages)
    {
        using var response = await host.PostChatAsync(new JsonObject { ["model"] = "scripted", ["messages"] = messages.DeepClone() }.ToJsonString());
        var text = await response.Content.ReadAsStringAsync(Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, text);
        return JsonNode.Parse(text)!["choices"]![0]!["message"]!;
    }
}
