#pragma warning disable OPENAI001 // The SDK marks its Responses client experimental.
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using OpenAI.Responses;

namespace Flotilla.Gateway.Tests.Ingress;

/// <summary>
/// The official OpenAI .NET SDK's Responses client, as a Codex-style loop would use it, against <c>/v1/responses</c> over
/// real sockets: a stateful tool loop (<c>previous_response_id</c>) that falls back from an Anthropic target to an OpenAI one,
/// streaming, <c>store: false</c>, other agents' ids, restarts and expiry.
/// </summary>
public sealed class ResponsesSdkTests : IAsyncLifetime
{
    private static readonly FunctionTool Weather = ResponseTool.CreateFunctionTool(
        functionName: "get_weather",
        functionParameters: BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""),
        strictModeEnabled: false,
        functionDescription: "Current weather in a city");

    private readonly string _keyVariable = "FLOTILLA_TEST_RESPONSES_SDK_" + Guid.NewGuid().ToString("N").ToUpperInvariant();
    private FakeUpstream _anthropic = null!;
    private FakeUpstream _openai = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable(_keyVariable, "sk-ant-test");
        _anthropic = await FakeUpstream.StartAsync("claude");
        _openai = await FakeUpstream.StartAsync("gpt");
    }

    public async ValueTask DisposeAsync()
    {
        await _anthropic.DisposeAsync();
        await _openai.DisposeAsync();
        Environment.SetEnvironmentVariable(_keyVariable, null);
    }

    private string Fleet(string extra = "") => $$"""
        gateway:
          providers:
            - { name: anthropic, type: anthropic, base_url: "{{_anthropic.BaseUrl}}", api_key: "${env:{{_keyVariable}}}" }
            - { name: openai, type: openai, base_url: "{{_openai.BaseUrl}}" }
          models:
            - { name: claude-haiku, provider: anthropic, model: claude-haiku-4-5, price: { input_per_million: 1, output_per_million: 5 } }
            - { name: gpt-mini, provider: openai, model: gpt-4o-mini, price: { input_per_million: 1, output_per_million: 5 } }
          routing:
            virtual_models:
              - { name: coder, targets: [ { model: claude-haiku, priority: 0 }, { model: gpt-mini, priority: 1 } ] }
            retries: { attempts: 0 }
        {{extra}}
        ---
        agent:
          name: other-loop
          owner: other-team
        """;

    private static ResponsesClient Client(GatewayHost host, string? key = null) => new(new ApiKeyCredential(key ?? host.AgentKey), new ResponsesClientOptions
    {
        Endpoint = new Uri(host.Server.Address, "v1"),
        RetryPolicy = new ClientRetryPolicy(0),
        NetworkTimeout = TimeSpan.FromSeconds(30),
    });

    private static CreateResponseOptions Ask(string model, string question) => new()
    {
        Model = model,
        Instructions = "You are terse.",
        InputItems = { ResponseItem.CreateUserMessageItem(question) },
        Tools = { Weather },
    };

    private static CreateResponseOptions Continue(string model, string previous, string callId, string output) => new()
    {
        Model = model,
        PreviousResponseId = previous,
        InputItems = { ResponseItem.CreateFunctionCallOutputItem(callId, output) },
        Tools = { Weather },
    };

    [Fact]
    public async Task A_stateful_tool_loop_falls_back_from_anthropic_to_openai_and_sends_only_what_is_new()
    {
        await using var host = await GatewayHost.StartAsync(Fleet());
        var client = Client(host);
        _anthropic.Enqueue(UpstreamBehaviour.Error(500), UpstreamBehaviour.Error(500));

        var first = (await client.CreateResponseAsync(Ask("coder", "Weather in Paris?"), Ct)).Value;

        first.Status.ShouldBe(ResponseStatus.Completed);
        var call = first.OutputItems.OfType<FunctionCallResponseItem>().Single();
        call.FunctionName.ShouldBe("get_weather");
        JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("city").GetString().ShouldBe("Paris");

        var second = (await client.CreateResponseAsync(Continue("coder", first.Id, call.CallId, "18C and sunny"), Ct)).Value;

        second.GetOutputText().ShouldBe("The tool said: 18C and sunny");
        second.PreviousResponseId.ShouldBe(first.Id);
        second.Usage.OutputTokenCount.ShouldBe(FakeUpstream.CompletionTokens);

        // The upstream saw the whole conversation rebuilt from the store: user turn, the call, its result.
        var sent = _openai.Requests[1].Json["messages"]!.AsArray();
        sent.Select(m => m!["role"]!.GetValue<string>()).ShouldBe(["user", "assistant", "tool"]);
        sent[1]!["tool_calls"]![0]!["id"]!.GetValue<string>().ShouldBe(call.CallId);
        sent[2]!["content"]!.GetValue<string>().ShouldBe("18C and sunny");
        var traces = await host.TracesAsync(2);
        traces.ShouldAllBe(t => t.GetProperty("operation").GetString() == "responses" && t.GetProperty("fell_back").GetBoolean());
    }

    [Fact]
    public async Task A_streamed_tool_loop_reads_as_responses_events()
    {
        await using var host = await GatewayHost.StartAsync(Fleet());
        var client = Client(host);

        var ask = Ask("claude-haiku", "Weather in Paris?");
        ask.StreamingEnabled = true;
        string? responseId = null, callId = null, arguments = null;
        var deltas = new StringBuilder();
        await using var firstStream = await client.CreateResponseStreamingAsync(ask, Ct);
        await foreach (var update in firstStream)
        {
            switch (update)
            {
                case StreamingResponseFunctionCallArgumentsDeltaUpdate delta:
                    deltas.Append(delta.Delta.ToString());
                    break;
                case StreamingResponseFunctionCallArgumentsDoneUpdate done:
                    arguments = done.FunctionArguments.ToString();
                    break;
                case StreamingResponseOutputItemDoneUpdate { Item: FunctionCallResponseItem item }:
                    callId = item.CallId;
                    break;
                case StreamingResponseCompletedUpdate completed:
                    responseId = completed.Response.Id;
                    break;
            }
        }

        responseId.ShouldNotBeNull();
        callId.ShouldNotBeNull();
        arguments.ShouldBe(deltas.ToString());
        JsonDocument.Parse(arguments!).RootElement.GetProperty("city").GetString().ShouldBe("Paris");

        var next = Continue("claude-haiku", responseId, callId, "18C and sunny");
        next.StreamingEnabled = true;
        var text = new StringBuilder();
        ResponseResult? final = null;
        await using var secondStream = await client.CreateResponseStreamingAsync(next, Ct);
        await foreach (var update in secondStream)
        {
            if (update is StreamingResponseOutputTextDeltaUpdate piece)
            {
                text.Append(piece.Delta);
            }
            else if (update is StreamingResponseCompletedUpdate completed)
            {
                final = completed.Response;
            }
        }

        text.ToString().ShouldBe("The tool said: 18C and sunny");
        final!.GetOutputText().ShouldBe(text.ToString());
        final.Usage.InputTokenCount.ShouldBe(FakeUpstream.PromptTokens);

        // The Anthropic target got the conversation translated: the tool call and its result as tool_use / tool_result.
        var messages = _anthropic.Requests[1].Json["messages"]!.AsArray();
        messages[1]!["content"]!.AsArray().Last()!["type"]!.GetValue<string>().ShouldBe("tool_use");
        messages[2]!["content"]![0]!["tool_use_id"]!.GetValue<string>().ShouldBe(callId);
    }

    [Fact]
    public async Task Store_false_unknown_and_other_agents_ids_cannot_be_continued()
    {
        await using var host = await GatewayHost.StartAsync(Fleet());
        var client = Client(host);

        var unstored = Ask("gpt-mini", "Weather in Paris?");
        unstored.StoredOutputEnabled = false;
        var first = (await client.CreateResponseAsync(unstored, Ct)).Value;
        var call = first.OutputItems.OfType<FunctionCallResponseItem>().Single();
        var refused = await Should.ThrowAsync<ClientResultException>(() => client.CreateResponseAsync(Continue("gpt-mini", first.Id, call.CallId, "18C"), Ct));
        refused.Status.ShouldBe(404);
        refused.GetRawResponse()!.Content.ToString().ShouldContain("previous_response_not_found");

        var stored = (await client.CreateResponseAsync(Ask("gpt-mini", "Weather in Paris?"), Ct)).Value;
        var other = Client(host, await host.Server.IssueKeyAsync("other-loop", Ct));
        var foreign = await Should.ThrowAsync<ClientResultException>(() => other.CreateResponseAsync(Continue("gpt-mini", stored.Id, call.CallId, "18C"), Ct));
        foreign.Status.ShouldBe(404);

        var unknown = await Should.ThrowAsync<ClientResultException>(() => client.CreateResponseAsync(Continue("gpt-mini", "resp_nope", call.CallId, "18C"), Ct));
        unknown.Status.ShouldBe(404);
    }

    [Fact]
    public async Task A_conversation_survives_a_restart_and_expires_after_its_ttl()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Fleet("""
              responses: { ttl: 10m }
            """), time);
        var first = (await Client(host).CreateResponseAsync(Ask("gpt-mini", "Weather in Paris?"), Ct)).Value;
        var call = first.OutputItems.OfType<FunctionCallResponseItem>().Single();

        await host.RestartAsync();
        var second = (await Client(host).CreateResponseAsync(Continue("gpt-mini", first.Id, call.CallId, "18C and sunny"), Ct)).Value;
        second.GetOutputText().ShouldBe("The tool said: 18C and sunny");

        time.Advance(TimeSpan.FromMinutes(11));
        var expired = await Should.ThrowAsync<ClientResultException>(() => Client(host).CreateResponseAsync(Continue("gpt-mini", second.Id, call.CallId, "18C"), Ct));
        expired.Status.ShouldBe(404);
    }
}
