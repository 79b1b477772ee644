using System.Security.Cryptography;
using System.Text;

namespace Flotilla.Server.Hosting;

/// <summary>
/// The admin token: from the options or <c>FLOTILLA_ADMIN_TOKEN</c>, else generated once and kept in
/// <c>DATA/admin-token</c> (mode 0600) so the local CLI can find it. At least <see cref="MinimumLength"/> characters;
/// compared in constant time; an empty or blank presented token is refused before any comparison.
/// </summary>
public sealed class AdminToken
{
    public const string FileName = "admin-token";
    public const string EnvironmentVariable = "FLOTILLA_ADMIN_TOKEN";
    public const string Prefix = "fla_";

    /// <summary>Shortest token accepted from the environment, the options or the data directory.</summary>
    public const int MinimumLength = 32;

    private const int MaxPresentedLength = 512;
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

    /// <summary>
    /// Finds or makes the token. Throws <see cref="StartupException"/> when the configured or stored token is too short
    /// (an empty file left by a crash between create and write must not open the admin API).
    /// </summary>
    public static AdminToken Resolve(string? configured, string dataDirectory)
    {
        var (token, source) = configured is { Length: > 0 }
            ? (configured, "the configured admin token")
            : (Environment.GetEnvironmentVariable(EnvironmentVariable), EnvironmentVariable);
        if (!string.IsNullOrEmpty(token))
        {
            return new AdminToken(Checked(token, source, $"set {EnvironmentVariable} to a random value of at least {MinimumLength} characters (e.g. `openssl rand -hex 24`)"), generated: false);
        }

        var path = Path.Combine(dataDirectory, FileName);
        if (File.Exists(path))
        {
            return new AdminToken(Checked(File.ReadAllText(path), path,
                $"delete the file to have a new token generated at start, or set {EnvironmentVariable}"), generated: false);
        }

        token = Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        WriteAtomically(path, token);
        return new AdminToken(token, generated: true);
    }

    private static string Checked(string token, string source, string remedy)
    {
        var trimmed = token.Trim();
        if (trimmed.Length < MinimumLength)
        {
            throw new StartupException(trimmed.Length == 0
                ? $"{source} is empty; refusing to start with an open admin API: {remedy}."
                : $"{source} is shorter than {MinimumLength} characters; refusing to start with a guessable admin token: {remedy}.");
        }

        return trimmed;
    }

    /// <summary>Written to a temporary file (0600) and renamed into place: a crash leaves either no token file or a whole one.</summary>
    private static void WriteAtomically(string path, string token)
    {
        var temporary = path + ".tmp-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using (var stream = new FileStream(temporary, fileOptions))
            {
                stream.Write(Encoding.UTF8.GetBytes(token));
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: false);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>True when <paramref name="presented"/> is this token. Empty or blank input never matches.</summary>
    public bool Matches(ReadOnlySpan<char> presented)
    {
        if (presented.IsWhiteSpace() || presented.Length > MaxPresentedLength)
        {
            return false;
        }

        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(MaxPresentedLength)];
        var length = Encoding.UTF8.GetBytes(presented, utf8);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(utf8[..length], hash);
        return CryptographicOperations.FixedTimeEquals(hash, _hash);
    }
}
