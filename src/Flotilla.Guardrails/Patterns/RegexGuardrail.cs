using System.Text.RegularExpressions;
using Flotilla.Fleet;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Patterns;

/// <summary>
/// <c>regex</c>: the fleet file's own patterns, compiled once (culture-invariant, <see cref="MatchTimeout"/> per match).
/// Findings are named <c>pattern-N</c> (1-based, in declared order); redact replaces each match with
/// <c>[REDACTED:NAME]</c> where NAME is the guardrail's name.
/// </summary>
internal sealed class RegexGuardrail : LocalGuardrail
{
    /// <summary>How long one pattern may run on one text before the guardrail gives up and blocks. 100 ms.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    private readonly Regex[] _patterns;
    private readonly string[] _kinds;
    private readonly string _label;

    public RegexGuardrail(GuardrailRef config) : base(config)
    {
        if (config.Patterns.Count == 0)
        {
            throw new ArgumentException($"guardrail '{config.Name}': type regex needs patterns", nameof(config));
        }

        _patterns = new Regex[config.Patterns.Count];
        _kinds = new string[config.Patterns.Count];
        for (var i = 0; i < _patterns.Length; i++)
        {
            try
            {
                _patterns[i] = new Regex(config.Patterns[i], RegexOptions.Compiled | RegexOptions.CultureInvariant, MatchTimeout);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"guardrail '{config.Name}': pattern {i + 1} is not a valid regular expression: {e.Message}", nameof(config), e);
            }

            _kinds[i] = $"pattern-{i + 1}";
        }

        _label = TextEdits.RedactedLabel(config.Name);
    }

    public override LocalScan Scan(string text, ref FindingTally tally, bool collect, ref List<TextEdit>? edits)
    {
        var triggered = false;
        for (var i = 0; i < _patterns.Length; i++)
        {
            try
            {
                foreach (var m in _patterns[i].EnumerateMatches(text))
                {
                    if (m.Length == 0)
                    {
                        continue;
                    }

                    triggered = true;
                    tally.Add(_kinds[i]);
                    if (collect)
                    {
                        (edits ??= []).Add(new TextEdit(m.Index, m.Length, _kinds[i], _label));
                    }
                }
            }
            catch (RegexMatchTimeoutException)
            {
                return new LocalScan(true, Failure: $"pattern {i + 1} ran longer than {MatchTimeout.TotalMilliseconds:0} ms on this text; simplify the pattern");
            }
        }

        return new LocalScan(triggered);
    }

    public override string Describe(in FindingTally tally, double? score) => "matched " + tally.Describe();
}
