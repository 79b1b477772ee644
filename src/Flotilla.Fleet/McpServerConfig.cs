namespace Flotilla.Fleet;

public enum McpTransport { Http, Stdio }

public enum McpAuthType { None, Bearer, Header }

/// <summary>An MCP server the fleet may reach through the MCP gateway.</summary>
/// <param name="Command">stdio: the program and its arguments.</param>
/// <param name="Auth">Outbound credentials: what the gateway presents to the server, never the caller's key.</param>
public sealed record McpServerConfig(
    string Name,
    McpTransport Transport,
    Uri? Url,
    IReadOnlyList<string> Command,
    IReadOnlyDictionary<string, ConfigValue> Env,
    McpAuthConfig Auth,
    SourceLocation Location);

public sealed record McpAuthConfig(McpAuthType Type, SecretReference? Token, string? HeaderName)
{
    public static McpAuthConfig None { get; } = new(McpAuthType.None, null, null);
}
