using System.Text;
using Flotilla.Gateway.Policy;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Tests.Policy;

/// <summary>Remembered token counts are exactly the tokenizer's, for the same text and only for the same text.</summary>
public sealed class TokenEstimatorTests
{
    [Fact]
    public void A_long_text_counted_again_gets_the_tokenizer_count_and_a_changed_one_is_counted_afresh()
    {
        var text = string.Concat(Enumerable.Repeat("The build failed on step 4 because the cache key changed; ", 20)) + Guid.NewGuid();
        var fresh = TokenEstimator.CountFresh(text);
        TokenEstimator.Count(text).ShouldBe(fresh);
        TokenEstimator.Count(text).ShouldBe(fresh);

        var changed = text + " And then the retry passed after 12 minutes of waiting.";
        TokenEstimator.Count(changed).ShouldBe(TokenEstimator.CountFresh(changed));
        TokenEstimator.Count(changed).ShouldBeGreaterThan(fresh);
    }

    [Fact]
    public void A_growing_history_is_estimated_the_same_on_every_call()
    {
        var turns = new List<string>();
        long? previous = null;
        for (var turn = 0; turn < 30; turn++)
        {
            turns.Add($$"""{"role":"{{(turn % 2 == 0 ? "user" : "assistant")}}","content":"turn {{turn}}: {{new string('x', 300 + turn)}} {{Guid.NewGuid()}}"}""");
            var body = Encoding.UTF8.GetBytes($$"""{"model":"m","messages":[{{string.Join(",", turns)}}]}""");
            var first = TokenEstimator.EstimateInput(ChatRequest.ParseChat(body));
            TokenEstimator.EstimateInput(ChatRequest.ParseChat(body)).ShouldBe(first);
            if (previous is { } p)
            {
                first.ShouldBeGreaterThan(p);
            }

            previous = first;
        }
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"plain ascii words, the common case"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"system","content":"line\nbreaks\t\"quotes\" and \\ slashes"},{"role":"user","content":"\u00e9\u00e8 caf\u00e9 \ud83d\ude00"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"日本語のテキストと絵文字 🚀🚀🚀 и кириллица"}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is in this image?"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"read_file","arguments":"{\"path\":\"/tmp/a b\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"<|endoftext|> 0x00ff"}],"tools":[{"type":"function","function":{"name":"read_file","parameters":{"type":"object"}}}]}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":""},{"role":"user","content":"a"}]}""")]
    public void The_cheap_bound_is_never_below_the_tokenizer_count(string body)
    {
        var request = ChatRequest.ParseChat(Encoding.UTF8.GetBytes(body));
        TokenEstimator.UpperBound(request).ShouldBeGreaterThanOrEqualTo(TokenEstimator.EstimateInput(request));
    }

    [Fact]
    public void The_cheap_bound_holds_for_embedding_inputs_and_random_unicode()
    {
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var text = new string([.. Enumerable.Range(0, random.Next(0, 400)).Select(_ => (char)random.Next(0x20, 0xD7FF))]);
            var body = Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { model = "m", input = new[] { text, "short" } }));
            var request = ChatRequest.ParseEmbeddings(body);
            TokenEstimator.UpperBound(request).ShouldBeGreaterThanOrEqualTo(TokenEstimator.EstimateInput(request));
        }
    }
}
