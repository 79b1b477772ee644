using Flotilla.Fleet.Loading;
using static Flotilla.Fleet.Tests.FleetText;

namespace Flotilla.Fleet.Tests.Loading;

/// <summary>
/// The fleet file's share of the bad-input corpus: hostile or broken text never throws out of the loader; each case is
/// refused with errors of the form FILE:LINE:COL: message, and no error echoes a control character.
/// </summary>
public sealed class BadFleetCorpusTests
{
    public static TheoryData<string, string, string> Corpus => new()
    {
        { "truncated flow mapping", "gateway: { providers: [ { name: sim, type: simul", "YAML syntax" },
        { "tab indentation", "gateway:\n\tproviders: []\n", "YAML syntax" },
        { "duplicate key", "agent:\n  name: a\n  name: b\n  owner: t\n", "Duplicate key" },
        { "wrong type for a list", "gateway:\n  providers: sim\n", "providers" },
        { "wrong type for a number", "agent: { name: a, owner: t, harness: { max_steps: lots } }", "max_steps" },
        { "negative number", "agent: { name: a, owner: t, harness: { max_steps: -1 } }", "max_steps" },
        { "number out of range", "agent: { name: a, owner: t, harness: { max_steps: 99999999999999999999 } }", "max_steps" },
        { "NUL in a scalar", "agent: { name: \"a\\0b\", owner: t }", "name" },
        { "escape sequence in a name", "agent: { name: \"\\e[31mred\", owner: t }", "name" },
        { "huge key", "agent: { name: a, owner: t, " + new string('k', 100_000) + ": 1 }", "unknown key" },
        { "deep nesting", "agent: { name: a, owner: t, metadata: " + new string('[', 200) + new string(']', 200) + " }", "metadata" },
        { "a document that is a list", "- a\n- b\n", "" },
        { "a document that is a scalar", "just text\n", "" },
        { "literal credential", "gateway:\n  providers:\n    - { name: o, type: openai, api_key: sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 }\n", "credential" },
        { "traces retention too short", "gateway:\n  traces: { retention: 10m }\n", "at least 1h" },
        { "traces retention not a duration", "gateway:\n  traces: { retention: forever }\n", "not a duration" },
        { "two budgets with one name", "gateway:\n  budgets:\n    - { applies_per: agent, limit: 5/day }\n    - { applies_per: agent, limit: 9/day, mode: audit }\n", "declared twice" },
        { "unknown key under traces", "gateway:\n  traces: { retension: 7d }\n", "did you mean 'retention'" },
        { "a script on a real provider's model", "gateway:\n  providers:\n    - { name: o, type: openai }\n  models:\n    - { name: m, provider: o, script: [ { text: hi } ] }\n", "only a model of a simulated provider follows a script" },
        { "a script step that is two things", "gateway:\n  providers:\n    - { name: s, type: simulated }\n  models:\n    - { name: m, provider: s, script: [ { text: hi, tool: t } ] }\n", "a script step is one of" },
        { "args on a text step", "gateway:\n  providers:\n    - { name: s, type: simulated }\n  models:\n    - { name: m, provider: s, script: [ { text: hi, args: { a: 1 } } ] }\n", "only a tool step takes args" },
        { "an unknown key under checker", "agent:\n  name: a\n  owner: t\n  checker: { agent: b, revisons: 2 }\n---\nagent:\n  name: b\n  owner: t\n  role: checker\n", "did you mean 'revisions'" },
        { "responses ttl too long", "gateway:\n  responses: { ttl: 400d }\n", "between 1m and 365d" },
        { "responses ttl not a duration", "gateway:\n  responses: { ttl: long }\n", "not a duration" },
        { "unknown key under responses", "gateway:\n  responses: { tll: 7d }\n", "did you mean 'ttl'" },
    };

    [Theory]
    [MemberData(nameof(Corpus))]
    public void Each_bad_fleet_is_refused_with_positioned_errors_and_no_exception(string name, string yaml, string expected)
    {
        var result = FleetLoader.Parse(yaml, FileName);
        result.IsValid.ShouldBeFalse(name);
        result.Errors.ShouldNotBeEmpty(name);
        foreach (var error in result.Errors.Select(e => e.ToString()))
        {
            error.ShouldMatch(@"^fleet\.yaml:\d+:\d+: ", name);
            error.ShouldNotContain("\u001b", customMessage: name);
            error.ShouldNotContain("\0", customMessage: name);
            error.Length.ShouldBeLessThan(2_000, name);
        }

        if (expected.Length > 0)
        {
            string.Join("\n", result.Errors).ShouldContain(expected, Case.Insensitive, name);
        }
    }

    [Fact]
    public void Traces_retention_is_read_and_defaults_to_30_days()
    {
        Valid("gateway:\n  traces: { retention: 7d }\n").Gateway.Traces.Retention.ShouldBe(TimeSpan.FromDays(7));
        Valid("").Gateway.Traces.Retention.ShouldBe(TimeSpan.FromDays(30));
    }

    [Fact]
    public void Responses_ttl_is_read_and_defaults_to_30_days()
    {
        Valid("gateway:\n  responses: { ttl: 2h }\n").Gateway.Responses.Ttl.ShouldBe(TimeSpan.FromHours(2));
        Valid("").Gateway.Responses.Ttl.ShouldBe(TimeSpan.FromDays(30));
    }
}
