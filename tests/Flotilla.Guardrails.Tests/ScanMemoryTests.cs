using Flotilla.Fleet;
using Flotilla.Guardrails.Tests.Corpus;

namespace Flotilla.Guardrails.Tests;

/// <summary>
/// A loop resends its whole history on every call; the guardrails remember their scans of long texts. What they
/// remember must give exactly what a fresh scan gives.
/// </summary>
public sealed class ScanMemoryTests
{
    // Corpus texts are short; padding them past the remembered length keeps what they contain.
    private static readonly string Padding = " " + CorpusSamples.OrdinaryDocument[..400];

    private static IEnumerable<string> LongTexts() =>
        CorpusSamples.Secrets.Select(s => s.Text)
            .Concat(CorpusSamples.Pii.Select(p => p.Text))
            .Concat(CorpusSamples.Injections.Select(i => i.Text))
            .Concat(CorpusSamples.Ordinary)
            .Select(text => text + Padding);

    public static TheoryData<GuardrailAction> Actions => [GuardrailAction.Block, GuardrailAction.Redact, GuardrailAction.Audit];

    [Theory]
    [MemberData(nameof(Actions))]
    public void A_remembered_scan_gives_the_same_outcome_as_a_fresh_one(GuardrailAction action)
    {
        GuardrailRef[] rails = [Rails.Injection(action), Rails.Secrets(action), Rails.Pii(action)];
        var remembering = Rails.Pipeline(rails);
        foreach (var text in LongTexts())
        {
            remembering.Run(text);
        }

        foreach (var text in LongTexts())
        {
            var fresh = Rails.Pipeline(rails).Run("a short first message", text);
            var remembered = remembering.Run("a short first message", text);

            remembered.Decision.ShouldBe(fresh.Decision, text);
            remembered.Texts.ShouldBe(fresh.Texts, text);
            remembered.Reason.ShouldBe(fresh.Reason, text);
            remembered.Verdicts.Select(Comparable).ShouldBe(fresh.Verdicts.Select(Comparable), text);
        }

        remembering.Members.ShouldAllBe(g => ((LocalGuardrail)g).Remembered > 0);
    }

    [Fact]
    public void A_text_is_remembered_only_from_the_minimum_length_and_once()
    {
        var pipeline = Rails.Pipeline(Rails.Secrets());
        var secrets = (LocalGuardrail)pipeline.Members[0];
        var longText = new string('a', ScanMemory.MinLength);

        pipeline.Run(new string('a', ScanMemory.MinLength - 1));
        secrets.Remembered.ShouldBe(0);

        pipeline.Run(longText, longText, longText);
        secrets.Remembered.ShouldBe(1);
    }

    [Fact]
    public void Findings_of_a_remembered_text_are_counted_on_every_call_that_sends_it()
    {
        var withSecret = CorpusSamples.Secrets[0].Text + Padding;
        var pipeline = Rails.Pipeline(Rails.Secrets(GuardrailAction.Audit));

        var first = pipeline.Run(withSecret);
        var twice = pipeline.Run(withSecret, withSecret);

        first.Verdicts[0].Effect.ShouldBe(GuardrailEffect.Audited);
        twice.Verdicts[0].Findings.Sum(f => f.Count).ShouldBe(2 * first.Verdicts[0].Findings.Sum(f => f.Count));
    }

    [Fact]
    public void A_remembered_redaction_redacts_the_same_way()
    {
        var text = CorpusSamples.Secrets[0].Text + Padding;
        var pipeline = Rails.Pipeline(Rails.Secrets(GuardrailAction.Redact));

        var first = pipeline.Run(text);
        var again = pipeline.Run(text);

        first.Decision.ShouldBe(GuardrailDecision.Redacted);
        again.Texts.ShouldBe(first.Texts);
        again.Texts[0].ShouldNotContain(CorpusSamples.Secrets[0].Secret);
    }

    private static string Comparable(GuardrailVerdict v) =>
        $"{v.Name} {v.Action} {v.Triggered} {v.Effect} {v.Score} {v.Note} [{string.Join(", ", v.Findings)}]";
}
