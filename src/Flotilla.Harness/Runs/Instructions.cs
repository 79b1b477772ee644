using Flotilla.Fleet;

namespace Flotilla.Harness.Runs;

/// <summary>Instructions the harness cannot read: a run that needs them fails, saying which file it looked for.</summary>
public sealed class InstructionsException(string message) : Exception(message);

/// <summary>
/// The system prompt of a run. Pinned instructions <c>./triage.md@v6</c> are the file <c>triage@v6.md</c> beside the fleet
/// file (the version goes before the extension); without instructions the prompt names the agent and its description.
/// </summary>
public static class Instructions
{
    public static string SystemPrompt(AgentConfig agent, string? fleetDirectory)
    {
        if (agent.Instructions is not { } pinned)
        {
            return agent.Description is { Length: > 0 } description
                ? $"You are {agent.Name}, an unattended loop owned by {agent.Owner}: {description}"
                : $"You are {agent.Name}, an unattended loop owned by {agent.Owner}.";
        }

        var path = FileFor(pinned, fleetDirectory ?? Directory.GetCurrentDirectory());
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InstructionsException($"instructions {pinned} of agent '{agent.Name}' could not be read from {path}: {e.Message}");
        }
    }

    /// <summary><c>./triage.md@v6</c> → <c>DIR/triage@v6.md</c>.</summary>
    public static string FileFor(VersionedRef pinned, string directory)
    {
        var name = pinned.Name;
        var extension = Path.GetExtension(name);
        var stem = name[..^extension.Length];
        var file = pinned.Version is null ? name : $"{stem}@{pinned.Version}{extension}";
        return Path.GetFullPath(Path.Combine(directory, file));
    }
}
