using System.Text;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Tests.Protocol;

public sealed class UsageReaderTests
{
    private static (bool Ok, TokenUsage Usage, bool HasUsage) Read(string json)
    {
        var ok = UsageReader.TryRead(Encoding.UTF8.GetBytes(json), out var usage, out var hasUsage);
        return (ok, usage, hasUsage);
    }

    [Fact]
    public void Usage_is_read_from_a_completion()
    {
        var result = Read("""
            {"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"usage"}}],
             "usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":8}}}
            """);

        result.ShouldBe((true, new TokenUsage(12, 34), true));
    }

    [Fact]
    public void Usage_is_read_from_the_final_stream_chunk()
    {
        var result = Read("""{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16}}""");

        result.ShouldBe((true, new TokenUsage(7, 9), true));
    }

    [Fact]
    public void Input_and_output_token_names_are_read_too()
    {
        Read("""{"usage":{"input_tokens":3,"output_tokens":4}}""").ShouldBe((true, new TokenUsage(3, 4), true));
    }

    [Fact]
    public void A_chunk_with_usage_null_has_no_usage()
    {
        Read("""{"object":"chat.completion.chunk","choices":[{"delta":{"content":"x"}}],"usage":null}""").ShouldBe((true, default(TokenUsage), false));
    }

    [Fact]
    public void A_body_without_usage_has_no_usage()
    {
        Read("""{"object":"chat.completion.chunk","choices":[{"delta":{"content":"x"}}]}""").ShouldBe((true, default(TokenUsage), false));
    }

    [Fact]
    public void Usage_nested_below_the_top_level_is_not_the_usage()
    {
        Read("""{"choices":[{"usage":{"prompt_tokens":5,"completion_tokens":6}}],"meta":{"usage":{"prompt_tokens":1}}}""")
            .ShouldBe((true, default(TokenUsage), false));
    }

    [Fact]
    public void Token_counts_that_are_null_read_as_zero()
    {
        Read("""{"usage":{"prompt_tokens":null,"completion_tokens":4,"total_tokens":null}}""").ShouldBe((true, new TokenUsage(0, 4), true));
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[1,2]")]
    [InlineData("{\"usage\":{\"prompt_tokens\":1}")]
    [InlineData("{\"usage\":{\"prompt_tokens\":1,}}")]
    [InlineData("{\"usage\":{\"prompt_tokens\":1}} trailing")]
    [InlineData("{\"usage\":{\"prompt_tokens\":1}}{}")]
    public void Invalid_json_returns_false(string json)
    {
        Read(json).Ok.ShouldBeFalse();
    }
}
