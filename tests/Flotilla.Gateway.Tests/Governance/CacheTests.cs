using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.Extensions.Time.Testing;
using OpenAI.Chat;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>The response cache on the request path: exact and semantic hits, stream replay, opt-outs, namespaces, TTL and bounds.</summary>
public sealed class CacheTests
{
    private const string Exact = """
        caching: { type: exact }
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_identical_request_is_answered_from_the_cache_without_reaching_the_upstream_and_costs_nothing()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Exact));

        using var first = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        Header(first, "X-Flotilla-Cache").ShouldBe("miss");
        var original = await first.Content.ReadAsStringAsync(Ct);

        using var second = await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(second, "X-Flotilla-Cache").ShouldBe("hit");
        Header(second, "X-Flotilla-Target").ShouldBe("pricey");
        (await second.Content.ReadAsStringAsync(Ct)).ShouldBe(original);
        upstream.Requests.Count.ShouldBe(1);
        var trace = await host.TraceAsync(Header(second, "X-Flotilla-Trace-Id"));
        trace.GetProperty("cache").GetString().ShouldBe("hit");
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe(0m);
        trace.GetProperty("status").GetInt32().ShouldBe(200);
        trace.GetProperty("final_target").GetString().ShouldBe("pricey");
        (await host.TraceAsync(Header(first, "X-Flotilla-Trace-Id"))).GetProperty("cache").GetString().ShouldBe("miss");
    }

    [Fact]
    public async Task Field_order_whitespace_and_stream_options_do_not_change_the_key_but_parameters_do()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Exact));

        using (await host.Http.PostChatAsync("""{"model":"cheap","temperature":0,"messages":[{"role":"user","content":"hi"}]}""", cancellationToken: Ct)) { }
        using var reordered = await host.Http.PostChatAsync("""{ "messages": [ {"content":" hi ","role":"user"} ], "temperature": 0, "model": "cheap", "user": "u1" }""", cancellationToken: Ct);
        using var hotter = await host.Http.PostChatAsync("""{"model":"cheap","temperature":1,"messages":[{"role":"user","content":"hi"}]}""", cancellationToken: Ct);

        Header(reordered, "X-Flotilla-Cache").ShouldBe("hit");
        Header(hotter, "X-Flotilla-Cache").ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_streaming_request_hits_a_cached_answer_and_the_openai_sdk_reads_the_replayed_stream()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Exact));
        var chat = host.Chat("cheap");
        List<ChatMessage> messages = [new UserChatMessage("What is the capital of France?")];

        var first = (await chat.CompleteChatAsync(messages, cancellationToken: Ct)).Value;
        var text = new StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, cancellationToken: Ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        text.ToString().ShouldBe(first.Content[0].Text);
        text.ToString().ShouldBe(upstream.DefaultText("upstream-cheap"));
        finish.ShouldBe(ChatFinishReason.Stop);
        usage.ShouldNotBeNull().OutputTokenCount.ShouldBe(FakeUpstream.CompletionTokens);
        upstream.Requests.Count.ShouldBe(1);
        var traces = await host.TracesAsync(2);
        traces.Single(t => t.GetProperty("stream").GetBoolean()).GetProperty("cache").GetString().ShouldBe("hit");
    }

    [Fact]
    public async Task A_streamed_answer_is_cached_and_served_to_a_later_request_without_stream()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Exact));

        using var streamed = await host.Http.PostChatAsync(Chat("cheap", stream: true), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        var events = (await streamed.Content.ReadAsStringAsync(Ct)).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        events[^1].ShouldBe("data: [DONE]");
        var streamedText = string.Concat(events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement)
            .Where(c => c.GetProperty("choices").GetArrayLength() > 0)
            .Select(c => c.GetProperty("choices")[0].GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""));

        using var plain = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(plain, "X-Flotilla-Cache").ShouldBe("hit");
        var answer = await GatewayHost.ReadJsonAsync(plain);
        answer.GetProperty("object").GetString().ShouldBe("chat.completion");
        answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString().ShouldBe(streamedText);
        answer.GetProperty("choices")[0].GetProperty("finish_reason").GetString().ShouldBe("stop");
        answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32().ShouldBe(FakeUpstream.CompletionTokens);
        streamedText.ShouldBe(upstream.DefaultText("upstream-cheap"));
        upstream.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task No_store_bypasses_the_cache_and_no_cache_refreshes_it()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, Exact));

        // no-store: not looked up, not stored.
        using (var bypass = await host.Http.PostChatAsync(Chat("cheap"), cacheControl: "no-store", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(bypass, "X-Flotilla-Cache").ShouldBe("");
        }

        using (var miss = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(miss, "X-Flotilla-Cache").ShouldBe("miss");
        }

        using (var bypass = await host.Http.PostChatAsync(Chat("cheap"), cacheControl: "no-store", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(bypass, "X-Flotilla-Cache").ShouldBe("");
        }

        upstream.Requests.Count.ShouldBe(3);

        // no-cache: the upstream is asked again and its fresh answer replaces the cached one.
        upstream.Enqueue(UpstreamBehaviour.Answer("fresh answer"));
        using (var refresh = await host.Http.PostChatAsync(Chat("cheap"), cacheControl: "no-cache", cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(refresh, "X-Flotilla-Cache").ShouldBe("miss");
            (await ContentAsync(refresh)).ShouldBe("fresh answer");
        }

        upstream.Requests.Count.ShouldBe(4);
        using var hit = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        Header(hit, "X-Flotilla-Cache").ShouldBe("hit");
        (await ContentAsync(hit)).ShouldBe("fresh answer");
        upstream.Requests.Count.ShouldBe(4);
    }

    [Fact]
    public async Task Per_agent_namespaces_keep_one_agents_answers_from_another()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, namespace_per: agent }
            """));
        var peer = await host.ClientForAsync(Peer);

        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var other = await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var again = await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(other, "X-Flotilla-Cache").ShouldBe("miss");
        Header(again, "X-Flotilla-Cache").ShouldBe("hit");
        upstream.Requests.Count.ShouldBe(2);
    }

    [Fact]
    public async Task Per_team_namespaces_share_answers_within_a_team_only()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, namespace_per: team }
            """));
        var peer = await host.ClientForAsync(Peer);
        var outsider = await host.ClientForAsync(Outsider);

        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var teammate = await peer.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var stranger = await outsider.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(teammate, "X-Flotilla-Cache").ShouldBe("hit");
        Header(stranger, "X-Flotilla-Cache").ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(2);
    }

    [Fact]
    public async Task An_entry_expires_after_its_ttl()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, ttl: 1m }
            """), time);

        using (await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        time.Advance(TimeSpan.FromSeconds(59));
        using (var hit = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(hit, "X-Flotilla-Cache").ShouldBe("hit");
        }

        time.Advance(TimeSpan.FromSeconds(2));
        using (var expired = await host.Http.PostChatAsync(Chat("cheap"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK))
        {
            Header(expired, "X-Flotilla-Cache").ShouldBe("miss");
        }

        upstream.Requests.Count.ShouldBe(2);
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 1)]
    public async Task Answers_with_tool_calls_are_cached_only_when_cache_tool_calls_is_on(bool cacheToolCalls, int upstreamCalls)
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            caching: { type: exact, cache_tool_calls: {{(cacheToolCalls ? "true" : "false")}} }
            """));
        const string Tools = ""","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]""";

        using var first = await host.Http.PostChatAsync(Chat("cheap", "weather in Paris?", extra: Tools), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        (await GatewayHost.ReadJsonAsync(first)).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls").GetArrayLength().ShouldBe(1);
        using var second = await host.Http.PostChatAsync(Chat("cheap", "weather in Paris?", extra: Tools), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(second, "X-Flotilla-Cache").ShouldBe(cacheToolCalls ? "hit" : "miss");
        (await GatewayHost.ReadJsonAsync(second)).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0]
            .GetProperty("function").GetProperty("name").GetString().ShouldBe("get_weather");
        upstream.Requests.Count.ShouldBe(upstreamCalls);
    }

    [Fact]
    public async Task A_cached_tool_call_is_replayed_as_a_stream_the_openai_sdk_reads()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, cache_tool_calls: true }
            """));
        var chat = host.Chat("cheap");
        var options = new ChatCompletionOptions();
        options.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "The weather in a city.",
            BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}}}""")));
        List<ChatMessage> messages = [new UserChatMessage("Weather in Paris?")];

        var first = (await chat.CompleteChatAsync(messages, options, Ct)).Value;
        first.ToolCalls.Single().FunctionName.ShouldBe("get_weather");

        string? name = null, id = null;
        var arguments = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options, Ct))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                name ??= call.FunctionName;
                id ??= call.ToolCallId;
                arguments.Append(call.FunctionArgumentsUpdate?.ToString());
            }

            finish ??= update.FinishReason;
        }

        name.ShouldBe("get_weather");
        id.ShouldBe(first.ToolCalls[0].Id);
        arguments.ToString().ShouldBe(FakeUpstream.DefaultToolArguments);
        finish.ShouldBe(ChatFinishReason.ToolCalls);
        upstream.Requests.Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_semantic_cache_answers_a_near_identical_question_and_not_a_different_one()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: semantic, similarity_threshold: 0.9 }
            """));

        upstream.Enqueue(UpstreamBehaviour.Answer("Paris."));
        using (await host.Http.PostChatAsync(Chat("cheap", "What is the capital city of France?"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var paraphrase = await host.Http.PostChatAsync(Chat("cheap", "what is the capital city of France, please?"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var different = await host.Http.PostChatAsync(Chat("cheap", "How do I bake sourdough bread at home?"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var otherModel = await host.Http.PostChatAsync(Chat("pricey", "What is the capital city of France?"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(paraphrase, "X-Flotilla-Cache").ShouldBe("hit");
        (await ContentAsync(paraphrase)).ShouldBe("Paris.");
        Header(different, "X-Flotilla-Cache").ShouldBe("miss");
        Header(otherModel, "X-Flotilla-Cache").ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(3);
        var trace = await host.TraceAsync(Header(paraphrase, "X-Flotilla-Trace-Id"));
        trace.GetProperty("cache").GetString().ShouldBe("hit");
        trace.GetProperty("cost_usd").GetDecimal().ShouldBe(0m);
    }

    [Fact]
    public async Task A_semantic_hit_needs_the_same_model_and_the_same_parameters()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: semantic, similarity_threshold: 0.9 }
            """));
        const string Question = "Summarise the open bug reports about the login page timing out after the latest release and rank them by severity";
        const string Tools = ""","tools":[{"type":"function","function":{"name":"list_issues","parameters":{"type":"object","properties":{}}}}]""";

        using (await host.Http.PostChatAsync(Chat("cheap", Question), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }
        using var sameAgain = await host.Http.PostChatAsync(Chat("cheap", Question + "."), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var otherModel = await host.Http.PostChatAsync(Chat("pricey", Question), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        using var withTools = await host.Http.PostChatAsync(Chat("cheap", Question, extra: Tools), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);

        Header(sameAgain, "X-Flotilla-Cache").ShouldBe("hit");
        // Another model's answer, or a text answer to a request that offers tools, is not the answer asked for.
        Header(otherModel, "X-Flotilla-Cache").ShouldBe("miss");
        (await ContentAsync(otherModel)).ShouldBe(upstream.DefaultText("upstream-pricey"));
        Header(withTools, "X-Flotilla-Cache").ShouldBe("miss");
        (await GatewayHost.ReadJsonAsync(withTools)).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls").GetArrayLength().ShouldBe(1);
        upstream.Requests.Count.ShouldBe(3);
    }

    [Fact]
    public async Task A_full_cache_evicts_the_least_recently_used_entry()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, max_entries: 2 }
            """));

        async Task<string> AskAsync(string question)
        {
            using var response = await host.Http.PostChatAsync(Chat("cheap", question), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
            return Header(response, "X-Flotilla-Cache");
        }

        (await AskAsync("a")).ShouldBe("miss");
        (await AskAsync("b")).ShouldBe("miss");
        (await AskAsync("a")).ShouldBe("hit");   // a is now more recent than b
        (await AskAsync("c")).ShouldBe("miss");  // evicts b
        (await AskAsync("a")).ShouldBe("hit");
        (await AskAsync("c")).ShouldBe("hit");
        (await AskAsync("b")).ShouldBe("miss");  // evicts a
        (await AskAsync("c")).ShouldBe("hit");
        (await AskAsync("a")).ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(5);
    }

    [Fact]
    public async Task The_bound_holds_across_namespaces_and_evicts_the_least_recently_used_entry_of_any_of_them()
    {
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, """
            caching: { type: exact, namespace_per: agent, max_entries: 3 }
            """));
        var peer = await host.ClientForAsync(Peer);

        static async Task<string> AskAsync(HttpClient client, string question)
        {
            using var response = await client.PostChatAsync(Chat("cheap", question), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
            return Header(response, "X-Flotilla-Cache");
        }

        (await AskAsync(host.Http, "x")).ShouldBe("miss");
        (await AskAsync(peer, "y")).ShouldBe("miss");
        (await AskAsync(peer, "z")).ShouldBe("miss");
        (await AskAsync(host.Http, "x")).ShouldBe("hit");   // y is now the least recently used
        (await AskAsync(host.Http, "q")).ShouldBe("miss");  // a fourth entry: evicts y
        (await AskAsync(host.Http, "x")).ShouldBe("hit");
        (await AskAsync(peer, "z")).ShouldBe("hit");
        (await AskAsync(host.Http, "q")).ShouldBe("hit");
        (await AskAsync(peer, "y")).ShouldBe("miss");
        upstream.Requests.Count.ShouldBe(5);
    }
}
