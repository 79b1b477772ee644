using System.Text.Json;
using Flotilla.Gateway.Guardrails;

namespace Flotilla.Gateway.Tests.Guardrails;

/// <summary>Long request texts seen before are handed back without decoding them again, and only for the same JSON.</summary>
public sealed class RequestTextsTests
{
    private static JsonElement Content(string json) => JsonDocument.Parse(json).RootElement.GetProperty("content");

    [Fact]
    public void A_long_text_resent_is_the_same_string_and_any_change_is_decoded_afresh()
    {
        var body = new string('x', 300) + " step " + Guid.NewGuid();
        var first = RequestTexts.Get(Content($$"""{"content":"{{body}}"}"""));
        var again = RequestTexts.Get(Content($$"""{"content":"{{body}}"}"""));

        first.ShouldBe(body);
        again.ShouldBeSameAs(first);

        // The same text escaped differently is another JSON value: decoded, and equal.
        RequestTexts.Get(Content($$"""{"content":"{{body.Replace("x", "\\u0078")}}"}""")).ShouldBe(body);
        // One character more is another text.
        RequestTexts.Get(Content($$"""{"content":"{{body}}!"}""")).ShouldBe(body + "!");
        RequestTexts.Get(Content("""{"content":"short \"quoted\" text"}""")).ShouldBe("short \"quoted\" text");
    }
}
