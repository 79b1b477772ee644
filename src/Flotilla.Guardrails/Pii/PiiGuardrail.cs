using Flotilla.Fleet;
using Flotilla.Guardrails.Secrets;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Pii;

/// <summary><c>pii</c>: personal data; redact replaces each with <c>[REDACTED:kind]</c>.</summary>
internal sealed class PiiGuardrail(GuardrailRef config) : LocalGuardrail(config)
{
    public override bool HoldsByWord => true;

    public override LocalScan Scan(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        List<TextFinding>? found = null;
        PiiDetector.Scan(text, ref found);
        return SecretsGuardrail.Record(found, ref tally, collect, ref edits);
    }
}
