using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace Flotilla.Bench.Upstream;

/// <summary>The benchmark's MCP tool: <c>lookup</c>, read-only, answers a short fixed text.</summary>
internal static class FakeMcp
{
    public static Tool Lookup { get; } = new()
    {
        Name = "lookup",
        Description = "Looks a key up (benchmark).",
        InputSchema = JsonDocument.Parse("""{"type":"object","properties":{"key":{"type":"string"}},"required":["key"]}""").RootElement.Clone(),
        Annotations = new ToolAnnotations { ReadOnlyHint = true },
    };

    private static readonly CallToolResult Found = new() { Content = [new TextContentBlock { Text = "The integration tests timed out waiting for Postgres; restart the database container." }] };

    public static CallToolResult Answer(CallToolRequestParams request) => request.Name == "lookup"
        ? Found
        : new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = $"unknown tool {request.Name}" }] };
}
