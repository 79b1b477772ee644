using Flotilla.Gateway.Traces;

namespace Flotilla.Gateway.Tests.Traces;

public sealed class SecretScrubberTests
{
    [Theory]
    [InlineData("invalid key flt_AbCdEf012345-_xyz", "invalid key [redacted]")]
    [InlineData("Incorrect API key provided: sk-proj-abc123DEF456ghi789.", "Incorrect API key provided: [redacted]")]
    [InlineData("key sk-****************************1234 rejected", "key [redacted] rejected")]
    [InlineData("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "Authorization: [redacted]")]
    [InlineData("authorization: bearer abcdefgh12345678", "authorization: [redacted]")]
    [InlineData("aws AKIAIOSFODNN7EXAMPLE used", "aws [redacted] used")]
    [InlineData("token ghp_0123456789abcdefABCDEF here", "token [redacted] here")]
    [InlineData("slack xoxb-1234-5678-abcdefgh", "slack [redacted]")]
    [InlineData("api_key=sk-abcdefgh12345678&x=1", "api_key=[redacted]&x=1")]
    [InlineData("(\"sk-ant-api03-abcdefgh\")", "(\"[redacted]\")")]
    [InlineData("OPENAI_API_KEY_sk-abcdefgh12345678", "OPENAI_API_KEY_[redacted]")]
    [InlineData("line one\nBearer abcdefgh12345678", "line one\n[redacted]")]
    public void Credential_shaped_text_is_redacted(string text, string expected)
    {
        SecretScrubber.Scrub(text).ShouldBe(expected);
    }

    [Fact]
    public void Every_credential_in_a_message_is_redacted()
    {
        SecretScrubber.Scrub("used flt_aaaaaaaaaaaa then sk-bbbbbbbbbbbb and Bearer cccccccccccc")
            .ShouldBe("used [redacted] then [redacted] and [redacted]");
    }

    [Theory]
    [InlineData("The model is overloaded. Please retry after 20 seconds.")]
    [InlineData("model gpt-4o-mini not found; ask-me-anything")]
    [InlineData("tool task-runner-20260101 failed: disk-usage-critical, risk-assessment")]
    [InlineData("flt_short and sk-short and Bearer short")]
    [InlineData("AKIA lowercase akiaiosfodnn7example")]
    [InlineData("")]
    public void Ordinary_text_is_left_as_it_is(string text)
    {
        SecretScrubber.Scrub(text).ShouldBe(text);
    }

    [Fact]
    public void Null_stays_null()
    {
        SecretScrubber.Scrub(null).ShouldBeNull();
    }
}
