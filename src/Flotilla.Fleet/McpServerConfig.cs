namespace Flotilla.Fleet;

public enum McpTransport { Http, Stdio }

/// <summary>Outbound credentials: what Flotilla presents to an MCP server.</summary>
public enum McpAuthType
{
    None,

    /// <summary><c>Authorization: Bearer</c> with a token from the environment.</summary>
    Bearer,

    /// <summary>A named header with a value from the environment.</summary>
    Header,

    /// <summary>The token of the human the call acts for (<c>X-Flotilla-User</c>), from the token vault.</summary>
    PerUser,
}

/// <summary>An MCP server the fleet may reach through the MCP gateway.</summary>
/// <param name="Command">stdio: the program and its arguments.</param>
/// <param name="Env">stdio: the server's whole environment besides PATH, HOME and a few like them; Flotilla's own is never passed on.</param>
/// <param name="Auth">Outbound credentials: what the gateway presents to the server, never the caller's key.</param>
public sealed record McpServerConfig(
    string Name,
    McpTransport Transport,
    Uri? Url,
    IReadOnlyList<string> Command,
    IReadOnlyDictionary<string, ConfigValue> Env,
    McpAuthConfig Auth,
    SourceLocation Location)
{
    /// <summary>Whether this server's tool annotations may loosen policy (a <c>readOnlyHint</c> admits a tool to <c>access: read</c>).
    /// Annotations from an untrusted server may only tighten it.</summary>
    public bool Trusted { get; init; }

    /// <summary>Tools of this server declared read-only by the fleet, whatever the server says (globs allowed).</summary>
    public IReadOnlyList<string> ReadOnlyTools { get; init; } = [];

    /// <summary>How long one request to this server may take before the caller gets an error naming it. Default 30 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
}

public sealed record McpAuthConfig(McpAuthType Type, SecretReference? Token, string? HeaderName)
{
    public static McpAuthConfig None { get; } = new(McpAuthType.None, null, null);
}

/// <summary>Gateway-wide MCP settings (<c>gateway.mcp</c>).</summary>
/// <param name="ApprovalTtl">How long a pending approval waits for a decision before it counts as denied. Default 24 h.</param>
/// <param name="IdempotencyTtl">How long a side-effecting call's result is kept against its idempotency key. Default 24 h.</param>
/// <param name="RecordArguments">Keep tool-call arguments on traces (default false: only their SHA-256).</param>
public sealed record McpGatewayConfig(TimeSpan ApprovalTtl, TimeSpan IdempotencyTtl, bool RecordArguments)
{
    public static McpGatewayConfig Default { get; } = new(TimeSpan.FromHours(24), TimeSpan.FromHours(24), false);
}

/// <summary>An artifact some loop may own, and how to recognise a write to it.</summary>
public sealed record ArtifactConfig(string Name, IReadOnlyList<ArtifactWrite> Writes, SourceLocation Location);

/// <summary>A write to an artifact: a call of one of <paramref name="Tools"/> on <paramref name="Server"/> whose arguments match <paramref name="Args"/> (globs).</summary>
public sealed record ArtifactWrite(string Server, IReadOnlyList<string> Tools, IReadOnlyDictionary<string, string> Args, SourceLocation Location);
