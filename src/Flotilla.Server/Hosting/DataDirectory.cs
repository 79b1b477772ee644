namespace Flotilla.Server.Hosting;

/// <summary>
/// The data directory holds traces, metadata and key hashes: created owner-only (0700), and an existing one that other
/// local users can read is reported at start-up. Anything that stops it from being used is a <see cref="StartupException"/>.
/// </summary>
internal static class DataDirectory
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Creates <paramref name="path"/> if needed; returns warnings to print.</summary>
    public static IReadOnlyList<string> Prepare(string path)
    {
        var warnings = new List<string>();
        try
        {
            if (File.Exists(path))
            {
                throw new StartupException($"the data directory '{path}' is a file; pass --data with a directory.");
            }

            if (!Directory.Exists(path))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(path);
                }
                else
                {
                    Directory.CreateDirectory(path, OwnerOnly);
                }
            }
            else if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & Others) != 0)
            {
                var mode = Convert.ToString((int)File.GetUnixFileMode(path), 8);
                warnings.Add($"the data directory '{path}' is open to other local users (mode 0{mode}) and holds traces, metadata and key hashes; run: chmod 700 '{path}'");
            }

            // Fail now, in one line, rather than on the first trace write.
            var probe = Path.Combine(path, ".write-probe-" + Environment.ProcessId);
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new StartupException($"cannot use the data directory '{path}': {e.Message} Pass --data with a writable directory.", e);
        }

        return warnings;
    }
}
