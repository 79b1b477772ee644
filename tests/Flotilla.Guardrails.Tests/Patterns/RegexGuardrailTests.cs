using Flotilla.Fleet;

namespace Flotilla.Guardrails.Tests.Patterns;

public sealed class RegexGuardrailTests
{
    [Fact]
    public void Patterns_block_and_count_each_pattern_separately()
    {
        var pipeline = Rails.Pipeline(Rails.Regex("internal-hosts", GuardrailAction.Block, @"\b[a-z0-9-]+\.corp\.internal\b", "PROJ-[0-9]+"));

        var outcome = pipeline.Run("see PROJ-12 on build-01.corp.internal and PROJ-13");

        outcome.IsBlocked.ShouldBeTrue();
        outcome.Verdicts[0].Findings.ShouldBe([new GuardrailFinding("pattern-1", 1), new GuardrailFinding("pattern-2", 2)]);
        outcome.Reason.ShouldBe("llm_output guardrail 'internal-hosts' (regex) blocked the call: matched pattern-1 (1), pattern-2 (2) in text 1");
    }

    [Fact]
    public void Redaction_labels_matches_with_the_guardrail_name()
    {
        var outcome = Rails.Pipeline(Rails.Regex("hosts", GuardrailAction.Redact, @"[a-z0-9-]+\.corp\.internal")).Run("ssh build-01.corp.internal");

        outcome.Texts[0].ShouldBe("ssh [REDACTED:hosts]");
    }

    [Fact]
    public void Empty_matches_are_ignored()
    {
        Rails.Pipeline(Rails.Regex("maybe", GuardrailAction.Block, "x*")).Run("no x here... well, one").IsBlocked.ShouldBeTrue();
        Rails.Pipeline(Rails.Regex("maybe", GuardrailAction.Block, "q*")).Run("nothing").IsBlocked.ShouldBeFalse();
    }

    [Fact]
    public void An_invalid_pattern_is_refused_when_the_pipeline_is_built()
    {
        Should.Throw<ArgumentException>(() => Rails.Pipeline(Rails.Regex("broken", GuardrailAction.Block, "ok", "(unclosed")))
            .Message.ShouldContain("guardrail 'broken': pattern 2 is not a valid regular expression");
    }

    [Fact]
    public void A_pattern_that_runs_too_long_blocks_even_when_it_only_redacts()
    {
        var text = new string('a', 40) + "!";

        var outcome = Rails.Pipeline(Rails.Regex("slow", GuardrailAction.Redact, "^(a+)+$")).Run(text);

        outcome.IsBlocked.ShouldBeTrue();
        outcome.Reason!.ShouldContain("pattern 1 ran longer than 100 ms on this text; simplify the pattern");
        outcome.Texts[0].ShouldBe(text);
    }

    [Fact]
    public void A_pattern_that_runs_too_long_in_an_audit_guardrail_is_only_recorded()
    {
        var outcome = Rails.Pipeline(Rails.Regex("slow", GuardrailAction.Audit, "^(a+)+$")).Run(new string('a', 40) + "!");

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed);
        outcome.Verdicts[0].Effect.ShouldBe(GuardrailEffect.Audited);
    }
}
