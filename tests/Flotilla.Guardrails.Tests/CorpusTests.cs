using System.Globalization;
using Flotilla.Guardrails.Pii;
using Flotilla.Guardrails.PromptInjection;
using Flotilla.Guardrails.Secrets;
using Flotilla.Guardrails.Tests.Corpus;

namespace Flotilla.Guardrails.Tests;

/// <summary>
/// Detection rate on the labelled corpora and false-positive rate on ordinary engineering text, with every built-in
/// guardrail on. Both figures are printed and go into docs/guardrails.md.
/// </summary>
public sealed class CorpusTests
{
    private static readonly GuardrailPipeline AllBuiltIns = Rails.Pipeline(Rails.Injection(), Rails.Secrets(), Rails.Pii());

    [Fact]
    public void Ordinary_text_passes_every_built_in()
    {
        var flagged = new List<string>();
        foreach (var line in CorpusSamples.Ordinary)
        {
            var outcome = AllBuiltIns.Run(line);
            if (outcome.IsBlocked)
            {
                flagged.Add($"{outcome.BlockedBy!.Value.Name}: {outcome.BlockedBy.Value.Note} <- {line}");
            }
        }

        var rate = (double)flagged.Count / CorpusSamples.Ordinary.Count;
        Report($"ordinary corpus: {CorpusSamples.Ordinary.Count} samples, {flagged.Count} flagged, false-positive rate {rate:P1}");
        CorpusSamples.Ordinary.Count.ShouldBeGreaterThanOrEqualTo(100);
        flagged.ShouldBeEmpty();
    }

    [Fact]
    public void Ordinary_text_as_one_document_passes_every_built_in()
    {
        var outcome = AllBuiltIns.Run(CorpusSamples.OrdinaryDocument);

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed, outcome.Reason);
        outcome.Verdicts.ShouldAllBe(v => !v.Triggered);
    }

    [Fact]
    public void Every_labelled_secret_is_detected_as_its_kind()
    {
        var missed = new List<string>();
        foreach (var sample in CorpusSamples.Secrets)
        {
            var findings = SecretDetector.Find(sample.Text);
            var covering = findings.Where(f => f.Start <= sample.Text.IndexOf(sample.Secret, StringComparison.Ordinal)
                && f.End >= sample.Text.IndexOf(sample.Secret, StringComparison.Ordinal) + sample.Secret.Length).ToList();
            if (!covering.Any(f => f.Kind == sample.Kind))
            {
                missed.Add($"{sample.Kind}: found [{string.Join(", ", findings.Select(f => f.Kind))}] in {sample.Text}");
            }
        }

        Report($"secrets corpus: {CorpusSamples.Secrets.Count} samples, {CorpusSamples.Secrets.Select(s => s.Kind).Distinct().Count()} kinds, "
            + $"detection rate {Rate(CorpusSamples.Secrets.Count - missed.Count, CorpusSamples.Secrets.Count)}");
        missed.ShouldBeEmpty();
    }

    [Fact]
    public void Every_labelled_piece_of_personal_data_is_detected_as_its_kind()
    {
        var missed = new List<string>();
        foreach (var sample in CorpusSamples.Pii)
        {
            var findings = PiiDetector.Find(sample.Text);
            var at = sample.Text.IndexOf(sample.Value, StringComparison.Ordinal);
            if (!findings.Any(f => f.Kind == sample.Kind && f.Start == at && f.Length == sample.Value.Length))
            {
                missed.Add($"{sample.Kind}: found [{string.Join(", ", findings.Select(f => $"{f.Kind}@{f.Start}+{f.Length}"))}] in {sample.Text}");
            }
        }

        Report($"pii corpus: {CorpusSamples.Pii.Count} samples, {CorpusSamples.Pii.Select(s => s.Kind).Distinct().Count()} kinds, "
            + $"detection rate {Rate(CorpusSamples.Pii.Count - missed.Count, CorpusSamples.Pii.Count)}");
        missed.ShouldBeEmpty();
    }

    [Fact]
    public void Every_labelled_injection_scores_at_or_above_the_default_threshold_with_its_signals()
    {
        var missed = new List<string>();
        var scores = new List<double>();
        foreach (var sample in CorpusSamples.Injections)
        {
            var analysis = PromptInjectionDetector.Analyze(sample.Text);
            scores.Add(analysis.Score);
            var names = PromptInjectionDetector.SignalNames(analysis.Signals).ToList();
            if (!analysis.IsInjection() || sample.Signals.Except(names).Any())
            {
                missed.Add($"{analysis} expected [{string.Join(", ", sample.Signals)}]: {sample.Text}");
            }
        }

        Report($"injection corpus: {CorpusSamples.Injections.Count} samples, detection rate "
            + $"{Rate(CorpusSamples.Injections.Count - missed.Count, CorpusSamples.Injections.Count)}, lowest score {scores.Min():0.00}, median {scores.Order().ElementAt(scores.Count / 2):0.00}");
        missed.ShouldBeEmpty();
    }

    [Fact]
    public void Ordinary_text_scores_below_the_default_injection_threshold()
    {
        var scores = CorpusSamples.Ordinary.Select(l => (Line: l, Analysis: PromptInjectionDetector.Analyze(l))).ToList();
        var weak = scores.Where(s => s.Analysis.Signals != InjectionSignals.None).ToList();

        Report($"ordinary corpus: {weak.Count} samples carry a weak injection signal (near misses), highest score {scores.Max(s => s.Analysis.Score):0.00}");
        scores.ShouldAllBe(s => !s.Analysis.IsInjection(PromptInjectionDetector.DefaultThreshold));
    }

    [Fact]
    public void Every_labelled_sample_is_blocked_by_the_full_pipeline()
    {
        var texts = CorpusSamples.Secrets.Select(s => s.Text).Concat(CorpusSamples.Pii.Select(s => s.Text)).Concat(CorpusSamples.Injections.Select(s => s.Text)).ToList();

        var passed = texts.Where(t => !AllBuiltIns.Run(t).IsBlocked).ToList();

        Report($"labelled corpora through the pipeline: {texts.Count} samples, {texts.Count - passed.Count} blocked");
        passed.ShouldBeEmpty();
    }

    private static string Rate(int hits, int total) => string.Create(CultureInfo.InvariantCulture, $"{(double)hits / total:P1} ({hits}/{total})");

    private static void Report(string line) => TestContext.Current.TestOutputHelper?.WriteLine(line);
}
