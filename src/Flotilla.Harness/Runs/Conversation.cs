using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Mcp;
using Flotilla.Storage.Runs;

namespace Flotilla.Harness.Runs;

/// <summary>A tool call the model asked for.</summary>
internal sealed record ToolCallRequest(string Id, string Name, string Arguments)
{
    public string ToJson() => new JsonObject { ["id"] = Id, ["name"] = Name, ["arguments"] = Arguments }.ToJsonString();
}

/// <summary>What a run does next, read from its persisted steps.</summary>
internal abstract record NextStep(int Seq)
{
    public sealed record Model(int Seq) : NextStep(Seq);

    /// <summary>A tool call of the last model answer, not yet done (or interrupted, or awaiting approval).</summary>
    public sealed record Tool(int Seq, ToolCallRequest Call) : NextStep(Seq);

    /// <summary>The last model answer called no tools: the run is done (once its checker, if any, passes it).</summary>
    public sealed record Finished(int Seq, string Output) : NextStep(Seq);

    /// <summary>The checker was asked to grade the run; its verdict decides what follows.</summary>
    public sealed record Checked(int Seq) : NextStep(Seq);
}

/// <summary>
/// A run's conversation, rebuilt from its steps: the agent's system prompt, the input as the user message, then each model
/// answer (an assistant message) and each tool result (a tool message) in order. Pure functions over persisted steps.
/// </summary>
internal static class Conversation
{
    public static NextStep Next(IReadOnlyList<RunStepRecord> steps)
    {
        if (steps.Count == 0)
        {
            return new NextStep.Model(0);
        }

        switch (steps[^1].Kind)
        {
            case StepKinds.Feedback:
                return new NextStep.Model(steps.Count);
            case StepKinds.Check:
                return new NextStep.Checked(steps.Count - 1);
        }

        // The last model step's answer decides what follows.
        var lastModel = LastModel(steps);

        if (lastModel < 0 || steps[lastModel].Status != StepKinds.Done)
        {
            // Interrupted before its answer was kept: ask again (a model call has no side effect).
            return new NextStep.Model(lastModel < 0 ? steps.Count : lastModel);
        }

        var answer = JsonNode.Parse(steps[lastModel].Result ?? "{}")!;
        var calls = ToolCalls(answer);
        var toolSteps = steps.Count - lastModel - 1;
        if (calls.Count == 0)
        {
            return new NextStep.Finished(lastModel + 1, answer["content"]?.GetValue<string>() ?? "");
        }

        // A tool step that is not done (interrupted, awaiting approval, or a delegation still running) is taken again
        // under its own number, the first such one first.
        for (var i = lastModel + 1; i < steps.Count; i++)
        {
            if (steps[i].Status != StepKinds.Done)
            {
                return new NextStep.Tool(i, calls[i - lastModel - 1]);
            }
        }

        return toolSteps < calls.Count ? new NextStep.Tool(steps.Count, calls[toolSteps]) : new NextStep.Model(steps.Count);
    }

    /// <summary>How many times in a row, counting this one, the run has made <paramref name="call"/> (same tool, same arguments).</summary>
    public static int Repeats(IReadOnlyList<RunStepRecord> steps, ToolCallRequest call)
    {
        var count = 1;
        for (var i = steps.Count - 1; i >= 0; i--)
        {
            var step = steps[i];
            if (step.Kind != StepKinds.Tool || step.Status != StepKinds.Done)
            {
                continue;
            }

            var previous = JsonNode.Parse(step.Request ?? "{}")!;
            if (previous["name"]?.GetValue<string>() != call.Name || !SameArguments(previous["arguments"]?.GetValue<string>(), call.Arguments))
            {
                break;
            }

            count++;
        }

        return count;
    }

    public static byte[] ChatRequest(string? model, string system, string input, IReadOnlyList<RunStepRecord> steps, IReadOnlyList<GovernedTool> tools)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (model is not null)
            {
                writer.WriteString("model", model);
            }

            writer.WriteStartArray("messages");
            Message(writer, "system", system);
            Message(writer, "user", input);
            foreach (var step in steps)
            {
                if (step.Status != StepKinds.Done)
                {
                    continue;
                }

                if (step.Kind == StepKinds.Model)
                {
                    writer.WriteRawValue(step.Result ?? "{}");
                }
                else if (step.Kind == StepKinds.Feedback)
                {
                    Message(writer, "user", step.Result ?? "");
                }
                else if (step.Kind == StepKinds.Tool)
                {
                    var request = JsonNode.Parse(step.Request ?? "{}")!;
                    writer.WriteStartObject();
                    writer.WriteString("role", "tool");
                    writer.WriteString("tool_call_id", request["id"]?.GetValue<string>());
                    writer.WriteString("content", step.Result ?? "");
                    writer.WriteEndObject();
                }
            }

            writer.WriteEndArray();
            if (tools.Count > 0)
            {
                writer.WriteStartArray("tools");
                foreach (var tool in tools)
                {
                    writer.WriteStartObject();
                    writer.WriteString("type", "function");
                    writer.WriteStartObject("function");
                    writer.WriteString("name", tool.Name);
                    if (tool.Description is not null)
                    {
                        writer.WriteString("description", tool.Description);
                    }

                    writer.WritePropertyName("parameters");
                    tool.InputSchema.WriteTo(writer);
                    writer.WriteEndObject();
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            }

            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The assistant message of a completion, kept as the model step's result (only role, content and tool_calls).</summary>
    public static string AssistantMessage(byte[] completion)
    {
        var message = JsonNode.Parse(completion)!["choices"]![0]!["message"]!;
        var kept = new JsonObject { ["role"] = "assistant", ["content"] = message["content"]?.DeepClone() };
        if (message["tool_calls"] is JsonArray { Count: > 0 } calls)
        {
            kept["tool_calls"] = calls.DeepClone();
        }

        return kept.ToJsonString();
    }

    public static string ErrorMessage(byte[] body)
    {
        try
        {
            return JsonNode.Parse(body)?["error"]?["message"]?.GetValue<string>() ?? "no message";
        }
        catch (JsonException)
        {
            return "no message";
        }
    }

    /// <summary>The text of the last model answer.</summary>
    public static string LastAnswer(IReadOnlyList<RunStepRecord> steps)
    {
        for (var i = steps.Count - 1; i >= 0; i--)
        {
            if (steps[i] is { Kind: StepKinds.Model, Status: StepKinds.Done, Result: { } result })
            {
                return JsonNode.Parse(result)?["content"]?.GetValue<string>() ?? "";
            }
        }

        return "";
    }

    /// <summary>A checker's verdict: its first non-empty line starts with PASS; anything else is a fail.</summary>
    public static bool Passed(string? verdict) =>
        verdict?.Split('\n').Select(l => l.Trim().TrimStart('*', '#', ' ')).FirstOrDefault(l => l.Length > 0) is { } first
        && first.StartsWith("PASS", StringComparison.OrdinalIgnoreCase);

    /// <summary>The tool calls of the last model answer that come after step <paramref name="seq"/> and have no step yet.</summary>
    public static IReadOnlyList<(int Seq, ToolCallRequest Call)> NotStartedAfter(IReadOnlyList<RunStepRecord> steps, int seq)
    {
        var lastModel = LastModel(steps);
        if (lastModel < 0 || steps[lastModel].Result is not { } answer)
        {
            return [];
        }

        var calls = ToolCalls(JsonNode.Parse(answer)!);
        var first = Math.Max(seq + 1, steps.Count);
        return [.. calls.Select((call, k) => (Seq: lastModel + 1 + k, Call: call)).Where(c => c.Seq >= first)];
    }

    /// <summary>The index of the last model step; -1 when there is none.</summary>
    private static int LastModel(IReadOnlyList<RunStepRecord> steps)
    {
        for (var i = steps.Count - 1; i >= 0; i--)
        {
            if (steps[i].Kind == StepKinds.Model)
            {
                return i;
            }
        }

        return -1;
    }

    private static List<ToolCallRequest> ToolCalls(JsonNode answer) =>
        answer["tool_calls"] is JsonArray calls
            ? [.. calls.Select(c => new ToolCallRequest(
                c!["id"]?.GetValue<string>() ?? "",
                c["function"]?["name"]?.GetValue<string>() ?? "",
                c["function"]?["arguments"]?.GetValue<string>() ?? "{}"))]
            : [];

    private static bool SameArguments(string? a, string b)
    {
        try
        {
            return JsonNode.DeepEquals(JsonNode.Parse(string.IsNullOrWhiteSpace(a) ? "{}" : a), JsonNode.Parse(string.IsNullOrWhiteSpace(b) ? "{}" : b));
        }
        catch (JsonException)
        {
            return a == b;
        }
    }

    private static void Message(Utf8JsonWriter writer, string role, string content)
    {
        writer.WriteStartObject();
        writer.WriteString("role", role);
        writer.WriteString("content", content);
        writer.WriteEndObject();
    }
}
