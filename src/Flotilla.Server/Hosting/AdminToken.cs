using System.Security.Cryptography;
using System.Text;

namespace Flotilla.Server.Hosting;

/// <summary>
/// The admin token: from the options or <c>FLOTILLA_ADMIN_TOKEN</c>, else generated once and kept in
/// <c>DATA/admin-token</c> (mode 0600) so the local CLI can find it. Compared in constant time.
/// </summary>
public sealed class AdminToken
{
    public const string FileName = "admin-token";
    public const string EnvironmentVariable = "FLOTILLA_ADMIN_TOKEN";
    public const string Prefix = "fla_";
    private readonly byte[] _hash;

    private AdminToken(string token, bool generated)
    {
        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        Generated = generated;
        Value = token;
    }

    /// <summary>True when this start generated the token (it is printed once).</summary>
    public bool Generated { get; }

    internal string Value { get; }

    public static AdminToken Resolve(string? configured, string dataDirectory)
    {
        var token = configured ?? Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(token))
        {
            return new AdminToken(token.Trim(), generated: false);
        }

        var path = Path.Combine(dataDirectory, FileName);
        if (File.Exists(path))
        {
            return new AdminToken(File.ReadAllText(path).Trim(), generated: false);
        }

        token = Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        Directory.CreateDirectory(dataDirectory);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(path, fileOptions))
        {
            stream.Write(Encoding.UTF8.GetBytes(token));
        }

        return new AdminToken(token, generated: true);
    }

    public bool Matches(ReadOnlySpan<char> presented)
    {
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(Math.Min(presented.Length, 512))];
        var length = Encoding.UTF8.GetBytes(presented[..Math.Min(presented.Length, 512)], utf8);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(utf8[..length], hash);
        return CryptographicOperations.FixedTimeEquals(hash, _hash);
    }
}
