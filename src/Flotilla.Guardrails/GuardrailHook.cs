namespace Flotilla.Guardrails;

/// <summary>Where a guardrail runs: on what goes to a model, what comes back, what goes to a tool, what a tool returns.</summary>
public enum GuardrailHook
{
    /// <summary><c>llm_input</c>: the messages sent to a model.</summary>
    LlmInput,

    /// <summary><c>llm_output</c>: the model's answer (whole, or streamed through a <see cref="StreamingGuard"/>).</summary>
    LlmOutput,

    /// <summary><c>mcp_pre_tool</c>: the arguments of a tool call, before it reaches the MCP server.</summary>
    McpPreTool,

    /// <summary><c>mcp_post_tool</c>: a tool's result, before the agent reads it.</summary>
    McpPostTool,
}

/// <summary>The fleet-file names of the hooks.</summary>
public static class GuardrailHooks
{
    public const string LlmInput = "llm_input";
    public const string LlmOutput = "llm_output";
    public const string McpPreTool = "mcp_pre_tool";
    public const string McpPostTool = "mcp_post_tool";

    /// <summary>Every hook, in the order a call meets them.</summary>
    public static IReadOnlyList<GuardrailHook> All { get; } = [GuardrailHook.LlmInput, GuardrailHook.LlmOutput, GuardrailHook.McpPreTool, GuardrailHook.McpPostTool];

    /// <summary>The fleet-file name of <paramref name="hook"/>, e.g. <c>llm_input</c>.</summary>
    public static string Name(this GuardrailHook hook) => hook switch
    {
        GuardrailHook.LlmInput => LlmInput,
        GuardrailHook.LlmOutput => LlmOutput,
        GuardrailHook.McpPreTool => McpPreTool,
        GuardrailHook.McpPostTool => McpPostTool,
        _ => throw new ArgumentOutOfRangeException(nameof(hook), hook, null),
    };
}

/// <summary>The built-in guardrail types, as written in the fleet file.</summary>
public static class GuardrailTypes
{
    public const string PromptInjection = "prompt-injection";
    public const string Secrets = "secrets-detection";
    public const string Pii = "pii";
    public const string Regex = "regex";
    public const string Webhook = "webhook";
}
