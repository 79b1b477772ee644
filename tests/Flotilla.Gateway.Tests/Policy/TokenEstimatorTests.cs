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
}
