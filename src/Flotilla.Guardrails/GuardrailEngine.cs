using Flotilla.Fleet;

namespace Flotilla.Guardrails;

/// <summary>
/// The fleet's guardrails on all four hooks (<c>gateway.guardrails</c>), built once from the fleet file: one
/// <see cref="GuardrailPipeline"/> per hook. Thread-safe; share one per fleet version.
/// </summary>
public sealed class GuardrailEngine
{
    private readonly GuardrailPipeline[] _pipelines;

    /// <param name="config">The fleet's <c>gateway.guardrails</c>.</param>
    /// <param name="http">Sends webhook requests; required when a guardrail is a webhook. Not disposed here.</param>
    /// <param name="time">Clock for webhook timeouts and verdict durations. Default <see cref="TimeProvider.System"/>.</param>
    public GuardrailEngine(GuardrailsConfig config, HttpClient? http = null, TimeProvider? time = null)
    {
        _pipelines =
        [
            new GuardrailPipeline(GuardrailHook.LlmInput, config.LlmInput, http, time),
            new GuardrailPipeline(GuardrailHook.LlmOutput, config.LlmOutput, http, time),
            new GuardrailPipeline(GuardrailHook.McpPreTool, config.McpPreTool, http, time),
            new GuardrailPipeline(GuardrailHook.McpPostTool, config.McpPostTool, http, time),
        ];
    }

    /// <summary>An engine with no guardrail on any hook.</summary>
    public static GuardrailEngine None { get; } = new(GuardrailsConfig.None);

    /// <summary>The pipeline of <paramref name="hook"/>.</summary>
    public GuardrailPipeline this[GuardrailHook hook] => _pipelines[(int)hook];

    /// <summary>Runs <paramref name="hook"/>'s guardrails over <paramref name="texts"/>; see <see cref="GuardrailPipeline.RunAsync"/>.</summary>
    public ValueTask<GuardrailOutcome> RunAsync(GuardrailHook hook, IReadOnlyList<string> texts, GuardrailContext context, CancellationToken cancellationToken = default) =>
        this[hook].RunAsync(texts, context, cancellationToken);
}
