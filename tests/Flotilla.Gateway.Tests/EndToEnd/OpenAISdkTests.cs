using System.Text;
using System.Text.Json;
using Flotilla.Testing;
using OpenAI.Chat;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>The official OpenAI .NET SDK, unchanged but for its endpoint, works against the gateway.</summary>
public sealed class OpenAISdkTests
{
    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool(
        "get_weather",
        "Current weather in a city",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"]}"""));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string SimulatedFleet(FakeUpstream upstream) => $$"""
        gateway:
          providers:
            - { name: sim, type: simulated }
            - { name: upstream, type: openai, base_url: "{{upstream.BaseUrl}}" }
          models:
            - { name: sim-chat, provider: sim }
            - { name: sim-embed, provider: sim, type: embedding }
            - { name: fake-chat, provider: upstream, model: gpt-fake }
            - { name: fake-embed, provider: upstream, model: text-embedding-fake, type: embedding }
        """;

    [Theory]
    [InlineData("sim-chat")]
    [InlineData("fake-chat")]
    public async Task A_chat_completion_comes_back_through_the_sdk(string model)
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));

        var result = await host.Chat(model).CompleteChatAsync([new UserChatMessage("Say hello")], cancellationToken: Ct);

        var completion = result.Value;
        completion.FinishReason.ShouldBe(ChatFinishReason.Stop);
        completion.Content[0].Text.ShouldBe(model == "sim-chat" ? "Simulated answer to: Say hello" : upstream.DefaultText("gpt-fake"));
        completion.Usage.OutputTokenCount.ShouldBeGreaterThan(0);
        result.GetRawResponse().Headers.TryGetValue("X-Flotilla-Target", out var target).ShouldBeTrue();
        target.ShouldBe(model);
    }

    [Fact]
    public async Task The_upstream_receives_the_callers_request_with_its_own_model_name_and_never_the_agent_key()
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));

        await host.Chat("fake-chat").CompleteChatAsync([new SystemChatMessage("Be brief."), new UserChatMessage("Say hello")],
            new ChatCompletionOptions { Temperature = 0.25f }, Ct);

        var request = upstream.Requests.ShouldHaveSingleItem();
        request.Path.ShouldBe("/v1/chat/completions");
        var body = request.Json;
        ((string?)body["model"]).ShouldBe("gpt-fake");
        ((float?)body["temperature"]).ShouldBe(0.25f);
        ((string?)body["messages"]![0]!["content"]).ShouldBe("Be brief.");
        request.Body.ShouldNotContain(host.AgentKey);
        request.Header("Authorization").ShouldBeNull();
    }

    [Theory]
    [InlineData("sim-chat")]
    [InlineData("fake-chat")]
    public async Task A_streamed_answer_reassembles_to_the_same_text_as_the_whole_answer(string model)
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));
        var chat = host.Chat(model);
        var whole = (await chat.CompleteChatAsync([new UserChatMessage("Tell me about the sea")], cancellationToken: Ct)).Value.Content[0].Text;

        var text = new StringBuilder();
        var updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Tell me about the sea")], cancellationToken: Ct))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        updates.ShouldBeGreaterThan(2);
        text.ToString().ShouldBe(whole);
    }

    [Theory]
    [InlineData("sim-chat")]
    [InlineData("fake-chat")]
    public async Task An_offered_tool_is_called_and_its_result_leads_to_a_text_answer(string model)
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));
        var chat = host.Chat(model);
        var options = new ChatCompletionOptions { Tools = { Weather } };
        List<ChatMessage> messages = [new UserChatMessage("What is the weather in Paris?")];

        var first = (await chat.CompleteChatAsync(messages, options, Ct)).Value;

        first.FinishReason.ShouldBe(ChatFinishReason.ToolCalls);
        var call = first.ToolCalls.ShouldHaveSingleItem();
        call.FunctionName.ShouldBe("get_weather");
        call.Id.ShouldNotBeNullOrEmpty();
        using (var arguments = JsonDocument.Parse(call.FunctionArguments))
        {
            arguments.RootElement.GetProperty("city").ValueKind.ShouldBe(JsonValueKind.String);
        }

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "18C and sunny"));
        var second = (await chat.CompleteChatAsync(messages, options, Ct)).Value;

        second.FinishReason.ShouldBe(ChatFinishReason.Stop);
        second.Content[0].Text.ShouldContain("18C and sunny");
    }

    [Theory]
    [InlineData("sim-chat")]
    [InlineData("fake-chat")]
    public async Task A_streamed_tool_call_reassembles_to_a_name_and_JSON_arguments(string model)
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));

        var (id, name, arguments, finish) = await StreamToolCallAsync(host.Chat(model), [new UserChatMessage("Weather in Paris?")], Weather);

        finish.ShouldBe(ChatFinishReason.ToolCalls);
        id.ShouldNotBeNullOrEmpty();
        name.ShouldBe("get_weather");
        using var json = JsonDocument.Parse(arguments);
        json.RootElement.GetProperty("city").ValueKind.ShouldBe(JsonValueKind.String);
    }

    [Theory]
    [InlineData("sim-embed")]
    [InlineData("fake-embed")]
    public async Task An_embedding_requested_as_base64_by_the_sdk_decodes_to_a_vector(string model)
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream));

        var embedding = (await host.Embeddings(model).GenerateEmbeddingAsync("the quick brown fox", cancellationToken: Ct)).Value;

        var vector = embedding.ToFloats().ToArray();
        if (model == "fake-embed")
        {
            vector.ShouldBe(FakeUpstream.EmbeddingVector);
            var request = upstream.Requests.ShouldHaveSingleItem();
            request.Path.ShouldBe("/v1/embeddings");
            ((string?)request.Json["encoding_format"]).ShouldBe("base64");
            ((string?)request.Json["model"]).ShouldBe("text-embedding-fake");
        }
        else
        {
            vector.Length.ShouldBe(256);
            Math.Sqrt(vector.Sum(v => (double)v * v)).ShouldBe(1, 1e-3);
        }
    }

    [Fact]
    public async Task The_model_list_names_virtual_models_first_then_models()
    {
        await using var upstream = await FakeUpstream.StartAsync("openai-fake");
        await using var host = await GatewayHost.StartAsync(SimulatedFleet(upstream).TrimEnd() + """

              routing:
                virtual_models:
                  - { name: everyday, targets: [ sim-chat, fake-chat ] }
            """);

        using var response = await host.Http.GetAsync("/v1/models", Ct);

        response.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        var list = await GatewayHost.ReadJsonAsync(response);
        list.GetProperty("object").GetString().ShouldBe("list");
        var models = list.GetProperty("data").EnumerateArray().ToArray();
        models.Select(m => m.GetProperty("id").GetString()).ShouldBe(["everyday", "fake-chat", "fake-embed", "sim-chat", "sim-embed"]);
        models.ShouldAllBe(m => m.GetProperty("object").GetString() == "model");
        models[0].GetProperty("owned_by").GetString().ShouldBe("flotilla");
        models[1].GetProperty("owned_by").GetString().ShouldBe("upstream");
    }

    internal static async Task<(string? Id, string? Name, string Arguments, ChatFinishReason? Finish)> StreamToolCallAsync(
        ChatClient chat, IEnumerable<ChatMessage> messages, ChatTool tool)
    {
        string? id = null, name = null;
        ChatFinishReason? finish = null;
        var arguments = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, new ChatCompletionOptions { Tools = { tool } }, TestContext.Current.CancellationToken))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                call.Index.ShouldBe(0);
                id ??= call.ToolCallId;
                name ??= call.FunctionName;
                if (call.FunctionArgumentsUpdate is { } piece && !piece.ToMemory().IsEmpty)
                {
                    arguments.Append(piece.ToString());
                }
            }

            finish ??= update.FinishReason;
        }

        return (id, name, arguments.ToString(), finish);
    }
}
