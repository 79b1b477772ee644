using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Guardrails;

namespace Flotilla.Gateway.Tests.Streaming;

/// <summary>The guard's chunk reader: finds the first choice's text without a DOM, and swaps it leaving every other byte as sent.</summary>
public sealed class ChunkTextTests
{
    private static ChunkText Read(string chunk) => ChunkText.Read(Encoding.UTF8.GetBytes(chunk));

    [Fact]
    public void Escaped_text_is_read_unescaped_and_replaced_with_the_rest_of_the_chunk_untouched()
    {
        const string chunk = """{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"line\n\"quoted\" caf\u00e9 \ud83d\ude00"},"logprobs":null,"finish_reason":null}],"system_fingerprint":"fp_x"}""";
        var text = Read(chunk);

        text.Content.ShouldBe("line\n\"quoted\" café 😀");
        text.OnlyContent.ShouldBeTrue();
        text.Finishes.ShouldBeFalse();

        var replaced = Encoding.UTF8.GetString(text.WithContent(Encoding.UTF8.GetBytes(chunk), "[REDACTED:x] \"ok\"\n"));
        replaced.ShouldBe("""{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"[REDACTED:x] \"ok\"\n"},"logprobs":null,"finish_reason":null}],"system_fingerprint":"fp_x"}""");
        JsonDocument.Parse(replaced).RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString().ShouldBe("[REDACTED:x] \"ok\"\n");
    }

    [Theory]
    [InlineData("""{"choices":[{"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}""", true, "Hi", false, false)]
    [InlineData("""{"choices":[{"delta":{"content":"end"},"finish_reason":"stop"}]}""", true, "end", true, true)]
    [InlineData("""{"choices":[{"delta":{},"finish_reason":"length"}]}""", true, null, false, true)]
    [InlineData("""{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}""", true, null, false, false)]
    [InlineData("""{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}""", false, null, false, false)]
    [InlineData("""{"usage":{"prompt_tokens":3},"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"},"finish_reason":"stop"}]}""", true, "a", true, false)]
    [InlineData("""{"choices":[{"delta":{"content":null},"finish_reason":null}]}""", true, null, false, false)]
    public void Reads_what_the_guard_needs_from_each_kind_of_chunk(string chunk, bool hasChoice, string? content, bool onlyContent, bool finishes)
    {
        var text = Read(chunk);

        text.HasChoice.ShouldBe(hasChoice);
        text.Content.ShouldBe(content);
        text.OnlyContent.ShouldBe(onlyContent);
        text.Finishes.ShouldBe(finishes);
    }

    [Fact]
    public void A_chunk_that_is_not_a_json_object_is_refused()
    {
        Should.Throw<JsonException>(() => Read("[1,2]"));
        Should.Throw<JsonException>(() => Read("""{"choices":[{"delta":{"content":"unterminated"""));
    }
}
