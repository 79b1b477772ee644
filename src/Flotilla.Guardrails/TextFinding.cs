namespace Flotilla.Guardrails;

/// <summary>Where a detector found something in a text: a UTF-16 range and what it is (e.g. <c>aws-access-key-id</c>, <c>email</c>).</summary>
public readonly record struct TextFinding(int Start, int Length, string Kind)
{
    public int End => Start + Length;
}
