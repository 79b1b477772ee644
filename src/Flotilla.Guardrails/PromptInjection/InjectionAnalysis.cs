namespace Flotilla.Guardrails.PromptInjection;

/// <summary>How strongly a text looks like a prompt injection, and why.</summary>
/// <param name="Score">0..1: the signals' weights combined as independent evidence, 1 − Π(1 − wᵢ).</param>
/// <param name="Signals">The signals that fired.</param>
public readonly record struct InjectionAnalysis(double Score, InjectionSignals Signals)
{
    /// <summary>Whether the score reaches <paramref name="threshold"/> (default 0.5).</summary>
    public bool IsInjection(double threshold = PromptInjectionDetector.DefaultThreshold) => Signals != InjectionSignals.None && Score >= threshold;

    /// <summary>The fired signals' names, e.g. <c>instruction-override, hidden-tag-characters</c>.</summary>
    public override string ToString() => $"{Score:0.00} ({string.Join(", ", PromptInjectionDetector.SignalNames(Signals))})";
}
