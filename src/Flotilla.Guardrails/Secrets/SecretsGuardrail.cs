using Flotilla.Fleet;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Secrets;

/// <summary><c>secrets-detection</c>: credentials; redact replaces each with <c>[REDACTED:kind]</c>.</summary>
internal sealed class SecretsGuardrail(GuardrailRef config) : LocalGuardrail(config)
{
    public override bool HoldsByWord => true;

    public override LocalScan Scan(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        List<TextFinding>? found = null;
        SecretDetector.Scan(text, ref found);
        return Record(found, ref tally, collect, ref edits);
    }

    internal static LocalScan Record(List<TextFinding>? found, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        if (found is null)
        {
            return default;
        }

        foreach (var f in found)
        {
            tally.Add(f.Kind);
            if (collect)
            {
                (edits ??= []).Add(new TextEdit(f.Start, f.Length, f.Kind, TextEdits.RedactedLabel(f.Kind)));
            }
        }

        return new LocalScan(true);
    }
}
