using System.Security.Cryptography;
using System.Text;

namespace Flotilla.Mcp.Naming;

/// <summary>
/// The names callers see: <c>SERVER__TOOL</c>, whatever other servers exist and in whatever order they load, so a tool's
/// name never changes when a server is added. MCP clients accept 1–128 characters of <c>[A-Za-z0-9_.-]</c>. A name that
/// fits is used as is. Otherwise each other character becomes <c>_</c>, and the name is cut to 119 characters and ends
/// with <c>-</c> and the first 8 hex digits of the SHA-256 of <c>SERVER__TOOL</c> as the server sent it, so it stays unique
/// and stable.
/// </summary>
public static class ToolNames
{
    public const string Separator = "__";
    public const int MaxLength = 128;
    private const int HashLength = 8;

    public static string Expose(string server, string tool)
    {
        var full = server + Separator + tool;
        if (full.Length <= MaxLength && IsValid(full))
        {
            return full;
        }

        var safe = new StringBuilder(full.Length);
        foreach (var c in full)
        {
            safe.Append(IsAllowed(c) ? c : '_');
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(full)).AsSpan(0, HashLength / 2));
        var keep = Math.Min(safe.Length, MaxLength - HashLength - 1);
        return safe.ToString(0, keep) + "-" + hash;
    }

    /// <summary>The server part of an exposed name, for naming a server in an error when its tool is not in the catalogue.</summary>
    public static string? ServerOf(string exposed)
    {
        var at = exposed.IndexOf(Separator, StringComparison.Ordinal);
        return at > 0 ? exposed[..at] : null;
    }

    public static bool IsValid(string name) => name.Length is > 0 and <= MaxLength && name.All(IsAllowed);

    private static bool IsAllowed(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-';
}
