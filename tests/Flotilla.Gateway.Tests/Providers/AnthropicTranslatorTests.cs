using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Providers.Anthropic;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Providers;

public sealed class AnthropicTranslatorTests
{
    [Fact]
    public void Tool_conversation_becomes_alternating_turns_whose_ids_match()
    {
        var request = Translate("""
            {"model":"claude","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":"Checking.","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\": \"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"18C"},
              {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},
              {"role":"user","content":"Which is warmer?"}]}
            """);

        request.GetProperty("system").GetString().ShouldBe("Be brief.");
        var turns = request.GetProperty("messages").EnumerateArray().ToArray();
        turns.Select(t => t.GetProperty("role").GetString()).ShouldBe(["user", "assistant", "user"]);
        turns[0].GetProperty("content").GetString().ShouldBe("Weather in Paris and Rome?");

        var assistant = turns[1].GetProperty("content").EnumerateArray().ToArray();
        assistant.Select(b => b.GetProperty("type").GetString()).ShouldBe(["text", "tool_use", "tool_use"]);
        assistant[0].GetProperty("text").GetString().ShouldBe("Checking.");
        assistant[1].GetProperty("id").GetString().ShouldBe("call_1");
        assistant[1].GetProperty("name").GetString().ShouldBe("weather");
        assistant[1].GetProperty("input").GetProperty("city").GetString().ShouldBe("Paris");
        assistant[2].GetProperty("input").GetProperty("city").GetString().ShouldBe("Rome");

        var results = turns[2].GetProperty("content").EnumerateArray().ToArray();
        results.Select(b => b.GetProperty("type").GetString()).ShouldBe(["tool_result", "tool_result", "text"]);
        results[0].GetProperty("tool_use_id").GetString().ShouldBe(assistant[1].GetProperty("id").GetString());
        results[0].GetProperty("content").GetString().ShouldBe("18C");
        results[1].GetProperty("tool_use_id").GetString().ShouldBe(assistant[2].GetProperty("id").GetString());
        results[1].GetProperty("content").GetString().ShouldBe("21C");
        results[2].GetProperty("text").GetString().ShouldBe("Which is warmer?");
    }

    [Fact]
    public void Tool_results_come_first_in_a_user_turn_even_after_user_text()
    {
        var request = Translate("""
            {"messages":[
              {"role":"user","content":"go"},
              {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},
              {"role":"user","content":"also this"},
              {"role":"tool","tool_call_id":"call_1","content":"done"}]}
            """);

        var turns = request.GetProperty("messages").EnumerateArray().ToArray();
        turns.Length.ShouldBe(3);
        turns[1].GetProperty("content")[0].GetProperty("input").GetRawText().ShouldBe("{}");
        turns[2].GetProperty("content").EnumerateArray().Select(b => b.GetProperty("type").GetString()).ShouldBe(["tool_result", "text"]);
    }

    [Fact]
    public void Consecutive_same_role_messages_merge_and_empty_ones_are_dropped()
    {
        var request = Translate("""
            {"messages":[
              {"role":"user","content":"one"},
              {"role":"assistant","content":""},
              {"role":"user","content":[{"type":"text","text":"two"}]}]}
            """);

        var turns = request.GetProperty("messages").EnumerateArray().ToArray();
        turns.Length.ShouldBe(1);
        turns[0].GetProperty("role").GetString().ShouldBe("user");
        turns[0].GetProperty("content").EnumerateArray().Select(b => b.GetProperty("text").GetString()).ShouldBe(["one", "two"]);
    }

    [Fact]
    public void System_and_developer_messages_join_into_the_system_prompt()
    {
        var request = Translate("""
            {"messages":[
              {"role":"system","content":"First."},
              {"role":"developer","content":[{"type":"text","text":"Second."}]},
              {"role":"user","content":"hi"}]}
            """);

        request.GetProperty("system").GetString().ShouldBe("First.\n\nSecond.");
        request.GetProperty("messages").GetArrayLength().ShouldBe(1);
    }

    [Fact]
    public void Without_system_messages_there_is_no_system_field()
    {
        var request = Translate("""{"messages":[{"role":"user","content":"hi"}]}""");

        request.TryGetProperty("system", out _).ShouldBeFalse();
    }

    [Fact]
    public void Sampling_fields_are_translated_and_OpenAI_only_fields_dropped()
    {
        var request = Translate("""
            {"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":300,"max_tokens":10,
             "temperature":0.5,"top_p":0.9,"stop":["END","","STOP"],"user":"u-1","n":1,"frequency_penalty":1,"presence_penalty":1,
             "logprobs":true,"seed":3,"response_format":{"type":"json_object"},"stream_options":{"include_usage":true}}
            """, stream: true);

        request.GetProperty("model").GetString().ShouldBe("claude-upstream");
        request.GetProperty("max_tokens").GetInt32().ShouldBe(300);
        request.GetProperty("temperature").GetDouble().ShouldBe(0.5);
        request.GetProperty("top_p").GetDouble().ShouldBe(0.9);
        request.GetProperty("stop_sequences").EnumerateArray().Select(s => s.GetString()).ShouldBe(["END", "STOP"]);
        request.GetProperty("metadata").GetProperty("user_id").GetString().ShouldBe("u-1");
        request.GetProperty("stream").GetBoolean().ShouldBeTrue();
        request.EnumerateObject().Select(p => p.Name).ShouldBe(
            ["model", "max_tokens", "messages", "temperature", "top_p", "stop_sequences", "metadata", "stream"], ignoreOrder: true);
    }

    [Fact]
    public void Defaults_fill_max_tokens_and_a_single_stop_string_becomes_a_list()
    {
        var request = Translate("""{"messages":[{"role":"user","content":"hi"}],"stop":"END","metadata":{"user_id":"m-1"},"user":"u-1"}""");

        request.GetProperty("max_tokens").GetInt32().ShouldBe(AnthropicTranslator.DefaultMaxTokens);
        request.GetProperty("stop_sequences").EnumerateArray().Select(s => s.GetString()).ShouldBe(["END"]);
        request.GetProperty("metadata").GetProperty("user_id").GetString().ShouldBe("m-1");
        request.GetProperty("stream").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public void Tools_become_input_schemas()
    {
        var request = Translate("""
            {"messages":[{"role":"user","content":"hi"}],"tools":[
              {"type":"function","function":{"name":"weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
              {"type":"function","function":{"name":"ping"}}]}
            """);

        var tools = request.GetProperty("tools").EnumerateArray().ToArray();
        tools[0].GetProperty("name").GetString().ShouldBe("weather");
        tools[0].GetProperty("description").GetString().ShouldBe("Weather now");
        tools[0].GetProperty("input_schema").GetProperty("required")[0].GetString().ShouldBe("city");
        tools[1].GetProperty("input_schema").GetRawText().ShouldBe("""{"type":"object","properties":{}}""");
        tools[1].TryGetProperty("description", out _).ShouldBeFalse();
        request.TryGetProperty("tool_choice", out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData("\"auto\"", """{"type":"auto"}""")]
    [InlineData("\"required\"", """{"type":"any"}""")]
    [InlineData("\"none\"", """{"type":"none"}""")]
    [InlineData("""{"type":"function","function":{"name":"weather"}}""", """{"type":"tool","name":"weather"}""")]
    public void Tool_choice_maps_to_Anthropic(string openAi, string anthropic)
    {
        var request = Translate($$$"""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"weather"}}],"tool_choice":{{{openAi}}}}""");

        request.GetProperty("tool_choice").GetRawText().ShouldBe(anthropic);
    }

    [Theory]
    [InlineData(null, """{"type":"auto","disable_parallel_tool_use":true}""")]
    [InlineData("\"required\"", """{"type":"any","disable_parallel_tool_use":true}""")]
    [InlineData("\"none\"", """{"type":"none"}""")]
    public void Parallel_tool_calls_false_disables_parallel_tool_use(string? choice, string anthropic)
    {
        var toolChoice = choice is null ? "" : $",\"tool_choice\":{choice}";
        var request = Translate($$$"""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false{{{toolChoice}}}}""");

        request.GetProperty("tool_choice").GetRawText().ShouldBe(anthropic);
    }

    [Fact]
    public void Images_become_base64_or_url_sources()
    {
        var request = Translate("""
            {"messages":[{"role":"user","content":[
              {"type":"text","text":"Compare"},
              {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
              {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}}]}]}
            """);

        var blocks = request.GetProperty("messages")[0].GetProperty("content").EnumerateArray().ToArray();
        blocks[1].GetProperty("type").GetString().ShouldBe("image");
        blocks[1].GetProperty("source").GetRawText().ShouldBe("""{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}""");
        blocks[2].GetProperty("source").GetRawText().ShouldBe("""{"type":"url","url":"https://example.com/cat.jpg"}""");
    }

    [Fact]
    public void Tool_ids_with_characters_Anthropic_rejects_are_rewritten_the_same_way_on_both_sides()
    {
        var request = Translate("""
            {"messages":[{"role":"user","content":"go"},
              {"role":"assistant","tool_calls":[{"id":"call:0/a","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"call:0/a","content":"ok"}]}
            """);

        var messages = request.GetProperty("messages");
        messages[1].GetProperty("content")[0].GetProperty("id").GetString().ShouldBe("call_0_a");
        messages[2].GetProperty("content")[0].GetProperty("tool_use_id").GetString().ShouldBe("call_0_a");
    }

    [Theory]
    [InlineData("""{"messages":[]}""", "messages")]
    [InlineData("""{"model":"m"}""", "messages")]
    [InlineData("""{"messages":[{"role":"system","content":"only a system prompt"}]}""", "messages")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"n":2}""", "n")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}""", "max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}]}""", "tool_choice")]
    [InlineData("""{"messages":[{"role":"robot","content":"hi"}]}""", "messages[0].role")]
    [InlineData("""{"messages":[{"role":"tool","content":"x"}]}""", "messages[0].tool_call_id")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}""", "messages[0].content[0].type")]
    [InlineData("""{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}""", "messages[0].content[0].image_url")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search"}]}""", "tools[0].type")]
    public void Untranslatable_requests_are_rejected_naming_the_param(string json, string param)
    {
        var error = Should.Throw<GatewayException>(() => Translate(json));

        error.Status.ShouldBe(400);
        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe(param);
    }

    [Theory]
    [InlineData("{\\\"city\\\":")]
    [InlineData("[1,2]")]
    [InlineData("{} {}")]
    public void Tool_call_arguments_that_are_not_a_JSON_object_are_rejected(string arguments)
    {
        var json = $$$"""
            {"messages":[{"role":"user","content":"go"},
              {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{{{arguments}}}"}}]}]}
            """;

        var error = Should.Throw<GatewayException>(() => Translate(json));

        error.Status.ShouldBe(400);
        error.Param.ShouldBe("messages[1].tool_calls");
    }

    [Fact]
    public void Tool_use_response_becomes_tool_calls_with_arguments_as_a_JSON_string()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
        var body = """
            {"id":"msg_01","type":"message","role":"assistant","model":"claude-x","content":[
              {"type":"text","text":"Let me check."},
              {"type":"tool_use","id":"toolu_01","name":"weather","input":{ "city" : "Paris", "units": ["c"] }}],
             "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":20,"cache_read_input_tokens":5,"cache_creation_input_tokens":3}}
            """u8;

        var completion = Parse(AnthropicTranslator.ToChatCompletion(body, "my-model", out var usage, time));

        completion.GetProperty("id").GetString().ShouldBe("chatcmpl-msg_01");
        completion.GetProperty("object").GetString().ShouldBe("chat.completion");
        completion.GetProperty("created").GetInt64().ShouldBe(1_700_000_000);
        completion.GetProperty("model").GetString().ShouldBe("my-model");
        var choice = completion.GetProperty("choices")[0];
        choice.GetProperty("index").GetInt32().ShouldBe(0);
        choice.GetProperty("finish_reason").GetString().ShouldBe("tool_calls");
        var message = choice.GetProperty("message");
        message.GetProperty("role").GetString().ShouldBe("assistant");
        message.GetProperty("content").GetString().ShouldBe("Let me check.");
        var call = message.GetProperty("tool_calls")[0];
        call.GetProperty("id").GetString().ShouldBe("toolu_01");
        call.GetProperty("type").GetString().ShouldBe("function");
        call.GetProperty("function").GetProperty("name").GetString().ShouldBe("weather");
        call.GetProperty("function").GetProperty("arguments").GetString().ShouldBe("""{"city":"Paris","units":["c"]}""");

        var usageJson = completion.GetProperty("usage");
        usageJson.GetProperty("prompt_tokens").GetInt64().ShouldBe(18);
        usageJson.GetProperty("completion_tokens").GetInt64().ShouldBe(20);
        usageJson.GetProperty("total_tokens").GetInt64().ShouldBe(38);
        usage.InputTokens.ShouldBe(18);
        usage.OutputTokens.ShouldBe(20);
    }

    [Fact]
    public void Text_response_joins_text_blocks_and_has_no_tool_calls()
    {
        var body = """
            {"id":"msg_02","type":"message","role":"assistant","content":[
              {"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Héllo, "},{"type":"text","text":"world"}],
             "stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":2}}
            """u8;

        var completion = Parse(AnthropicTranslator.ToChatCompletion(body, "m", out var usage));

        var message = completion.GetProperty("choices")[0].GetProperty("message");
        message.GetProperty("content").GetString().ShouldBe("Héllo, world");
        message.TryGetProperty("tool_calls", out _).ShouldBeFalse();
        completion.GetProperty("usage").TryGetProperty("prompt_tokens_details", out _).ShouldBeFalse();
        usage.ShouldBe(new Flotilla.Gateway.Protocol.TokenUsage(4, 2));
    }

    [Fact]
    public void Tool_only_response_has_null_content()
    {
        var body = """{"id":"m","type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":1}}"""u8;

        var message = Parse(AnthropicTranslator.ToChatCompletion(body, "m", out _)).GetProperty("choices")[0].GetProperty("message");

        message.GetProperty("content").ValueKind.ShouldBe(JsonValueKind.Null);
        message.GetProperty("tool_calls")[0].GetProperty("function").GetProperty("arguments").GetString().ShouldBe("{}");
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    [InlineData("pause_turn", "stop")]
    [InlineData("refusal", "stop")]
    public void Stop_reason_maps_to_finish_reason(string stopReason, string finishReason)
    {
        var body = Encoding.UTF8.GetBytes($$$"""{"id":"m","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"{{{stopReason}}}","usage":{"input_tokens":1,"output_tokens":1}}""");

        var completion = Parse(AnthropicTranslator.ToChatCompletion(body, "m", out _));

        completion.GetProperty("choices")[0].GetProperty("finish_reason").GetString().ShouldBe(finishReason);
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("")]
    [InlineData("""{"id":"m","type":"message","content":[{"type":"text"}]""")]
    public void Garbage_response_throws_JsonException(string body) =>
        Should.Throw<JsonException>(() => AnthropicTranslator.ToChatCompletion(Encoding.UTF8.GetBytes(body), "m", out _), "expected a JSON error");

    [Theory]
    [InlineData("[1,2,3]")]
    [InlineData("""{"hello":"world"}""")]
    [InlineData("""{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}""")]
    [InlineData("""{"id":"m","type":"message","content":[{"type":"text"}]}""")]
    [InlineData("""{"id":"m","type":"message","content":[{"type":"tool_use","id":"t","name":"f"}]}""")]
    [InlineData("""{"id":"m","type":"message","content":[42]}""")]
    public void Response_that_is_not_a_Messages_response_throws_FormatException(string body) =>
        Should.Throw<FormatException>(() => AnthropicTranslator.ToChatCompletion(Encoding.UTF8.GetBytes(body), "m", out _));

    [Theory]
    [InlineData("""{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}""", "max_tokens: too large")]
    [InlineData("""{"error":{"type":"rate_limit_error","message":"Slow down"}}""", "Slow down")]
    [InlineData("""{"type":"message","error":{"message":"x"}}""", null)]
    [InlineData("""{"error":"boom"}""", null)]
    [InlineData("<html>Bad Gateway</html>", null)]
    [InlineData("", null)]
    public void ReadErrorMessage_reads_only_Anthropic_error_bodies(string body, string? expected) =>
        AnthropicTranslator.ReadErrorMessage(Encoding.UTF8.GetBytes(body)).ShouldBe(expected);

    private static JsonElement Translate(string openAiJson, bool stream = false)
    {
        using var document = JsonDocument.Parse(openAiJson);
        return Parse(AnthropicTranslator.ToMessagesRequest(document.RootElement, "claude-upstream", stream));
    }

    private static JsonElement Parse(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }
}
