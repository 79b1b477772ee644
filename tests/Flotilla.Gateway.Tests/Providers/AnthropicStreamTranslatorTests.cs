using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers.Anthropic;

namespace Flotilla.Gateway.Tests.Providers;

public sealed class AnthropicStreamTranslatorTests
{
    // A text block, then a tool_use block whose input arrives in three pieces, as Anthropic streams it.
    private static readonly (string? Name, string Data)[] TextThenToolUse =
    [
        ("message_start", """{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}"""),
        ("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"""),
        ("ping", """{"type": "ping"}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check \"the\"\nweather ☀"}}"""),
        ("content_block_stop", """{"type":"content_block_stop","index":0}"""),
        ("content_block_start", """{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\", \"units\":"}}"""),
        ("content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"c\"}"}}"""),
        ("content_block_stop", """{"type":"content_block_stop","index":1}"""),
        ("message_delta", """{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}"""),
        ("message_stop", """{"type":"message_stop"}"""),
    ];

    [Fact]
    public void Text_then_tool_use_streams_as_OpenAI_chunks()
    {
        var translator = new AnthropicStreamTranslator("chatcmpl-1", "my-model", 1_700_000_000, includeUsage: false);

        var chunks = Run(translator, TextThenToolUse);

        foreach (var chunk in chunks)
        {
            chunk.GetProperty("id").GetString().ShouldBe("chatcmpl-1");
            chunk.GetProperty("object").GetString().ShouldBe("chat.completion.chunk");
            chunk.GetProperty("created").GetInt64().ShouldBe(1_700_000_000);
            chunk.GetProperty("model").GetString().ShouldBe("my-model");
            chunk.TryGetProperty("usage", out _).ShouldBeFalse();
            chunk.GetProperty("choices")[0].GetProperty("index").GetInt32().ShouldBe(0);
        }

        var deltas = chunks.Select(c => c.GetProperty("choices")[0].GetProperty("delta")).ToArray();
        deltas[0].GetRawText().ShouldBe("""{"role":"assistant","content":""}""");
        string.Concat(deltas.Where(d => d.TryGetProperty("content", out _)).Select(d => d.GetProperty("content").GetString()))
            .ShouldBe("Let me check \"the\"\nweather ☀");

        var toolDeltas = deltas.Where(d => d.TryGetProperty("tool_calls", out _)).Select(d => d.GetProperty("tool_calls")[0]).ToArray();
        toolDeltas.Length.ShouldBe(4);
        toolDeltas.ShouldAllBe(t => t.GetProperty("index").GetInt32() == 0);
        toolDeltas[0].GetProperty("id").GetString().ShouldBe("toolu_1");
        toolDeltas[0].GetProperty("type").GetString().ShouldBe("function");
        toolDeltas[0].GetProperty("function").GetProperty("name").GetString().ShouldBe("weather");
        toolDeltas[1].TryGetProperty("id", out _).ShouldBeFalse();
        string.Concat(toolDeltas.Select(t => t.GetProperty("function").GetProperty("arguments").GetString()))
            .ShouldBe("""{"city": "Paris", "units": "c"}""");

        var finishes = chunks.Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason")).ToArray();
        finishes[..^1].ShouldAllBe(f => f.ValueKind == JsonValueKind.Null);
        finishes[^1].GetString().ShouldBe("tool_calls");
        deltas[^1].GetRawText().ShouldBe("{}");

        translator.Completed.ShouldBeTrue();
        translator.FinishReason.ShouldBe("tool_calls");
        translator.Error.ShouldBeNull();
        translator.Usage.ShouldBe(new TokenUsage(25, 42));
    }

    [Fact]
    public void Usage_chunk_comes_last_only_when_asked_for()
    {
        var translator = new AnthropicStreamTranslator("chatcmpl-1", "m", 1, includeUsage: true);

        var chunks = Run(translator, TextThenToolUse);

        chunks[..^1].ShouldAllBe(c => c.GetProperty("usage").ValueKind == JsonValueKind.Null);
        var last = chunks[^1];
        last.GetProperty("choices").GetArrayLength().ShouldBe(0);
        last.GetProperty("usage").GetRawText().ShouldBe("""{"prompt_tokens":25,"completion_tokens":42,"total_tokens":67}""");

        var withoutUsage = Run(new AnthropicStreamTranslator("chatcmpl-1", "m", 1, includeUsage: false), TextThenToolUse);
        withoutUsage.Length.ShouldBe(chunks.Length - 1);
        withoutUsage.ShouldAllBe(c => c.GetProperty("choices").GetArrayLength() == 1);
    }

    [Fact]
    public void Cache_tokens_count_as_prompt_tokens()
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: true);

        var chunks = Run(translator,
        [
            ("message_start", """{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}"""),
            ("message_delta", """{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7}}"""),
            ("message_stop", """{"type":"message_stop"}"""),
        ]);

        translator.Usage.ShouldBe(new TokenUsage(125, 7));
        var usage = chunks[^1].GetProperty("usage");
        usage.GetProperty("prompt_tokens").GetInt64().ShouldBe(125);
        usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt64().ShouldBe(100);
    }

    [Fact]
    public void Events_without_an_event_name_are_read_by_their_type()
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: false);

        var chunks = Run(translator, TextThenToolUse.Select(e => ((string?)null, e.Data)).ToArray());

        chunks.Length.ShouldBe(Run(new AnthropicStreamTranslator("c", "m", 1, false), TextThenToolUse).Length);
        translator.Completed.ShouldBeTrue();
        translator.FinishReason.ShouldBe("tool_calls");
    }

    [Fact]
    public void Second_tool_use_block_is_tool_call_one()
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: false);

        var chunks = Run(translator,
        [
            ("message_start", """{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":1}}}"""),
            ("content_block_start", """{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_a","name":"a","input":{}}}"""),
            ("content_block_start", """{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_b","name":"b","input":{}}}"""),
            ("content_block_delta", """{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}"""),
        ]);

        var calls = chunks.Skip(1).Select(c => c.GetProperty("choices")[0].GetProperty("delta").GetProperty("tool_calls")[0]).ToArray();
        calls.Select(c => c.GetProperty("index").GetInt32()).ShouldBe([0, 1, 1]);
        calls[1].GetProperty("id").GetString().ShouldBe("toolu_b");
    }

    [Theory]
    [InlineData("end_turn", "stop")]
    [InlineData("stop_sequence", "stop")]
    [InlineData("max_tokens", "length")]
    [InlineData("tool_use", "tool_calls")]
    public void Message_delta_maps_the_stop_reason(string stopReason, string finishReason)
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: false);

        var chunks = Run(translator,
        [
            ("message_start", """{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":1}}}"""),
            ("message_delta", $$$"""{"type":"message_delta","delta":{"stop_reason":"{{{stopReason}}}"},"usage":{"output_tokens":3}}"""),
        ]);

        chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString().ShouldBe(finishReason);
        translator.FinishReason.ShouldBe(finishReason);
        translator.Completed.ShouldBeFalse();
    }

    [Fact]
    public void Ping_emits_nothing()
    {
        var output = new List<byte[]>();

        new AnthropicStreamTranslator("c", "m", 1, includeUsage: true).OnEvent("ping", """{"type":"ping"}"""u8, output);

        output.ShouldBeEmpty();
    }

    [Fact]
    public void Error_event_sets_Error_and_emits_nothing()
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: true);
        var output = new List<byte[]>();

        translator.OnEvent("error", """{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"""u8, output);

        output.ShouldBeEmpty();
        translator.Error.ShouldBe("Overloaded");
        translator.Completed.ShouldBeFalse();
    }

    [Fact]
    public void Error_event_found_by_type_when_unnamed()
    {
        var translator = new AnthropicStreamTranslator("c", "m", 1, includeUsage: false);

        translator.OnEvent(null, """{"type":"error","error":{"type":"api_error","message":"Internal"}}"""u8, []);

        translator.Error.ShouldBe("Internal");
    }

    [Fact]
    public void Data_that_is_not_JSON_throws_JsonException() =>
        Should.Throw<JsonException>(() =>
            new AnthropicStreamTranslator("c", "m", 1, includeUsage: false).OnEvent("content_block_delta", "not json"u8, []));

    private static JsonElement[] Run(AnthropicStreamTranslator translator, (string? Name, string Data)[] events)
    {
        var output = new List<byte[]>();
        foreach (var (name, data) in events)
        {
            translator.OnEvent(name, Encoding.UTF8.GetBytes(data), output);
        }

        return output.Select(payload =>
        {
            using var document = JsonDocument.Parse(payload);
            return document.RootElement.Clone();
        }).ToArray();
    }
}
