using System.Globalization;
using Flotilla.Fleet;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.PromptInjection;

/// <summary>
/// <c>prompt-injection</c>: scored; triggers at <see cref="GuardrailRef.Threshold"/> (default 0.5). Redact removes hidden
/// characters and replaces each offending passage with <see cref="PromptInjectionDetector.RemovedLabel"/>.
/// </summary>
internal sealed class PromptInjectionGuardrail(GuardrailRef config) : LocalGuardrail(config)
{
    public double Threshold { get; } = config.Threshold ?? PromptInjectionDetector.DefaultThreshold;

    public override LocalScan Scan(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        var analysis = PromptInjectionDetector.Analyze(text);
        if (analysis.Signals == InjectionSignals.None)
        {
            return new LocalScan(false, 0);
        }

        foreach (var name in PromptInjectionDetector.SignalNames(analysis.Signals))
        {
            tally.Add(name);
        }

        var triggered = analysis.IsInjection(Threshold);
        if (triggered && collect)
        {
            PromptInjectionDetector.Analyze(text, edits ??= [], Threshold);
        }

        return new LocalScan(triggered, analysis.Score);
    }

    public override string Describe(in FindingTally tally, double? score) =>
        string.Create(CultureInfo.InvariantCulture, $"score {score ?? 0:0.00} (threshold {Threshold:0.00}): {tally.Describe()}");
}
