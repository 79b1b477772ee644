namespace Flotilla.Fleet;

/// <summary>
/// The whole fleet as declared in one multi-document YAML file: fleet-level policy under
/// <see cref="Gateway"/>, the MCP servers the fleet may reach and the registered agents (loops).
/// Immutable: the runtime builds its own state from it.
/// </summary>
public sealed record FleetConfig(
    GatewayConfig Gateway,
    IReadOnlyList<McpServerConfig> McpServers,
    IReadOnlyList<AgentConfig> Agents)
{
    public static FleetConfig Empty { get; } = new(GatewayConfig.Empty, [], []);

    public AgentConfig? FindAgent(string name) => Agents.FirstOrDefault(a => a.Name == name);

    public McpServerConfig? FindMcpServer(string name) => McpServers.FirstOrDefault(s => s.Name == name);
}

/// <summary>Where something was declared, for messages in the form <c>FILE:LINE:COL</c>.</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>
/// A credential reference. The fleet file never holds a credential, only <c>${env:NAME}</c>;
/// the value is read from the environment when it is used, so rotating a key needs no file change.
/// </summary>
public sealed record SecretReference(string EnvironmentVariable)
{
    public string? Resolve() => Environment.GetEnvironmentVariable(EnvironmentVariable);

    public override string ToString() => $"${{env:{EnvironmentVariable}}}";
}
