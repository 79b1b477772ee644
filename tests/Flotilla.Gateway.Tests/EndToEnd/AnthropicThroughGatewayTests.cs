using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Testing;
using OpenAI.Chat;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>An OpenAI SDK caller holds a tool conversation with a model behind Anthropic's Messages API, through the gateway.</summary>
public sealed class AnthropicThroughGatewayTests : IAsyncLifetime
{
    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool(
        "get_weather",
        "Current weather in a city",
        BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"]}"""));

    private readonly string _keyVariable = "FLOTILLA_TEST_ANTHROPIC_KEY_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
    private readonly string _key = "sk-ant-test-" + Guid.NewGuid().ToString("N");
    private FakeUpstream _anthropic = null!;
    private GatewayHost _host = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_keyVariable, _key);
        _anthropic = await FakeUpstream.StartAsync("claude");
        _host = await GatewayHost.StartAsync($$"""
            gateway:
              providers:
                - { name: anthropic, type: anthropic, base_url: "{{_anthropic.BaseUrl}}", api_key: "${env:{{_keyVariable}}}" }
              models:
                - { name: claude-haiku, provider: anthropic, model: claude-haiku-4-5, price: { input_per_million: 1, output_per_million: 5 } }
            """);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _anthropic.DisposeAsync();
        Environment.SetEnvironmentVariable(_keyVariable, null);
    }

    [Fact]
    public async Task A_tool_conversation_goes_call_result_answer_and_reaches_anthropic_in_its_own_shape()
    {
        var chat = _host.Chat("claude-haiku");
        var options = new ChatCompletionOptions { Tools = { Weather } };
        List<ChatMessage> messages = [new SystemChatMessage("You are terse."), new UserChatMessage("Weather in Paris?")];

        var first = (await chat.CompleteChatAsync(messages, options, Ct)).Value;

        first.FinishReason.ShouldBe(ChatFinishReason.ToolCalls);
        first.Content.ShouldHaveSingleItem().Text.ShouldBe(FakeUpstream.ToolLeadIn);
        var call = first.ToolCalls.ShouldHaveSingleItem();
        call.FunctionName.ShouldBe("get_weather");
        JsonNode.DeepEquals(JsonNode.Parse(call.FunctionArguments.ToString()), JsonNode.Parse(FakeUpstream.DefaultToolArguments)).ShouldBeTrue();

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "18C and sunny"));
        var second = (await chat.CompleteChatAsync(messages, options, Ct)).Value;

        second.FinishReason.ShouldBe(ChatFinishReason.Stop);
        second.Content[0].Text.ShouldBe("The tool said: 18C and sunny");
        second.Usage.InputTokenCount.ShouldBe(FakeUpstream.PromptTokens);
        second.Usage.OutputTokenCount.ShouldBe(FakeUpstream.CompletionTokens);
        AssertAnthropicSaw(_anthropic.Requests, call.Id, stream: false);
    }

    [Fact]
    public async Task A_streamed_tool_conversation_reassembles_and_reaches_anthropic_in_its_own_shape()
    {
        var chat = _host.Chat("claude-haiku");
        List<ChatMessage> messages = [new SystemChatMessage("You are terse."), new UserChatMessage("Weather in Paris?")];

        var (id, name, arguments, finish) = await OpenAISdkTests.StreamToolCallAsync(chat, messages, Weather);

        finish.ShouldBe(ChatFinishReason.ToolCalls);
        name.ShouldBe("get_weather");
        id.ShouldNotBeNullOrEmpty();
        JsonNode.DeepEquals(JsonNode.Parse(arguments), JsonNode.Parse(FakeUpstream.DefaultToolArguments)).ShouldBeTrue();

        messages.Add(new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall(id, name, BinaryData.FromString(arguments))]));
        messages.Add(new ToolChatMessage(id, "18C and sunny"));
        var text = new StringBuilder();
        ChatFinishReason? secondFinish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, new ChatCompletionOptions { Tools = { Weather } }, Ct))
        {
            text.Append(string.Concat(update.ContentUpdate.Select(p => p.Text)));
            secondFinish ??= update.FinishReason;
        }

        text.ToString().ShouldBe("The tool said: 18C and sunny");
        secondFinish.ShouldBe(ChatFinishReason.Stop);
        AssertAnthropicSaw(_anthropic.Requests, id, stream: true);

        // Usage came from message_start and message_delta, and was priced.
        var traces = await _host.TracesAsync(2);
        traces.ShouldAllBe(t => t.GetProperty("input_tokens").GetInt64() == FakeUpstream.PromptTokens
            && t.GetProperty("output_tokens").GetInt64() == FakeUpstream.CompletionTokens
            && t.GetProperty("cost_usd").GetDecimal() == (FakeUpstream.PromptTokens * 1m + FakeUpstream.CompletionTokens * 5m) / 1_000_000m
            && t.GetProperty("stream").GetBoolean());
    }

    [Fact]
    public async Task An_anthropic_rate_limit_reaches_the_caller_as_an_openai_error()
    {
        _anthropic.Enqueue(UpstreamBehaviour.Respond(429, """{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}""", ("retry-after", "30")));

        using var response = await _host.PostChatAsync("""{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}]}""");

        ((int)response.StatusCode).ShouldBe(429);
        response.Headers.RetryAfter?.Delta.ShouldBe(TimeSpan.FromSeconds(30));
        var error = await GatewayHost.ErrorAsync(response);
        error.GetProperty("type").GetString().ShouldBe("rate_limit_error");
        error.GetProperty("message").GetString()!.ShouldContain("rate limit");
        _anthropic.Requests.Count.ShouldBe(1);
    }

    private void AssertAnthropicSaw(IReadOnlyList<RecordedRequest> requests, string toolCallId, bool stream)
    {
        requests.Count.ShouldBe(2);
        foreach (var request in requests)
        {
            request.Path.ShouldBe("/v1/messages");
            request.Header("x-api-key").ShouldBe(_key);
            request.Header("anthropic-version").ShouldNotBeNullOrEmpty();
            request.Header("Authorization").ShouldBeNull();
            request.Body.ShouldNotContain(_host.AgentKey);
            var body = request.Json;
            ((string?)body["model"]).ShouldBe("claude-haiku-4-5");
            ((bool?)body["stream"] ?? false).ShouldBe(stream);
            ((int?)body["max_tokens"]).ShouldNotBeNull().ShouldBeGreaterThan(0);
            ((string?)body["system"]).ShouldBe("You are terse.");
            body["messages"]!.AsArray().ShouldAllBe(m => (string?)m!["role"] != "system");
            var tool = body["tools"]!.AsArray().ShouldHaveSingleItem()!;
            ((string?)tool["name"]).ShouldBe("get_weather");
            ((string?)tool["input_schema"]!["properties"]!["city"]!["type"]).ShouldBe("string");
        }

        var turns = requests[1].Json["messages"]!.AsArray();
        turns.Select(t => (string?)t!["role"]).ShouldBe(["user", "assistant", "user"]);
        var toolUse = turns[1]!["content"]!.AsArray().Single(b => (string?)b!["type"] == "tool_use")!;
        ((string?)toolUse["id"]).ShouldBe(toolCallId);
        ((string?)toolUse["name"]).ShouldBe("get_weather");
        JsonNode.DeepEquals(toolUse["input"], JsonNode.Parse(FakeUpstream.DefaultToolArguments)).ShouldBeTrue();
        var result = turns[2]!["content"]!.AsArray().ShouldHaveSingleItem()!;
        ((string?)result["type"]).ShouldBe("tool_result");
        ((string?)result["tool_use_id"]).ShouldBe(toolCallId);
        TextOf(result["content"]).ShouldBe("18C and sunny");
    }

    private static string TextOf(JsonNode? content) => content switch
    {
        JsonValue value => value.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select(p => (string?)p!["text"])),
        _ => "",
    };
}
