using Flotilla.Fleet;

namespace Flotilla.Guardrails.Tests;

/// <summary>Guardrail configurations as the fleet loader would build them.</summary>
internal static class Rails
{
    public static GuardrailRef Of(string type, GuardrailAction action = GuardrailAction.Block, string? name = null, double? threshold = null,
        IReadOnlyList<string>? patterns = null, Uri? url = null, int timeoutMs = 1000, bool failOpen = false) =>
        new(name ?? type, type, action, threshold, patterns ?? [], url, timeoutMs, failOpen, new SourceLocation("fleet.yaml", 1, 1));

    public static GuardrailRef Injection(GuardrailAction action = GuardrailAction.Block) => Of(GuardrailTypes.PromptInjection, action);

    public static GuardrailRef Secrets(GuardrailAction action = GuardrailAction.Block) => Of(GuardrailTypes.Secrets, action);

    public static GuardrailRef Pii(GuardrailAction action = GuardrailAction.Block) => Of(GuardrailTypes.Pii, action);

    public static GuardrailRef Regex(string name, GuardrailAction action, params string[] patterns) => Of(GuardrailTypes.Regex, action, name, patterns: patterns);

    public static GuardrailPipeline Pipeline(params GuardrailRef[] guardrails) => new(GuardrailHook.LlmOutput, guardrails);

    public static readonly GuardrailContext Context = new("bug-report-triage", "platform-team");

    /// <summary>Runs a pipeline that has no webhook: it must complete synchronously.</summary>
    public static GuardrailOutcome Run(this GuardrailPipeline pipeline, params string[] texts)
    {
        var run = pipeline.RunAsync(texts, Context, TestContext.Current.CancellationToken);
        if (!run.IsCompletedSuccessfully)
        {
            throw new ShouldAssertException("a pipeline of local guardrails completes synchronously");
        }

        return run.Result;
    }
}
