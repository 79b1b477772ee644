using Flotilla.Fleet;

namespace Flotilla.Harness.Runs;

/// <summary>Instructions the harness cannot read: a run that needs them fails, saying which file it looked for.</summary>
public sealed class InstructionsException(string message) : Exception(message);

/// <summary>
/// The system prompt of a run: the agent's pinned instructions (<see cref="PinnedFiles.InstructionsPath"/>), or, without
/// them, a line naming the agent, its owner and description; then each pinned skill's name, description and body.
/// </summary>
public static class Instructions
{
    public static string SystemPrompt(AgentConfig agent, string? fleetDirectory)
    {
        var directory = fleetDirectory ?? Directory.GetCurrentDirectory();
        string prompt;
        if (agent.InlineInstructions is { } inline)
        {
            prompt = inline;
        }
        else if (agent.Instructions is not { } pinned)
        {
            prompt = agent.Description is { Length: > 0 } description
                ? $"You are {agent.Name}, an unattended loop owned by {agent.Owner}: {description}"
                : $"You are {agent.Name}, an unattended loop owned by {agent.Owner}.";
        }
        else
        {
            var path = PinnedFiles.InstructionsPath(pinned, directory);
            try
            {
                prompt = File.ReadAllText(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InstructionsException($"instructions {pinned} of agent '{agent.Name}' could not be read from {path}: {e.Message}");
            }
        }

        foreach (var skill in agent.Skills)
        {
            var path = PinnedFiles.SkillPath(skill, directory);
            try
            {
                var read = PinnedFiles.ReadSkill(path, skill.Name);
                prompt += $"\n\n## Skill: {read.Name} ({skill.Version})\n{read.Description}\n\n{read.Body}";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
                throw new InstructionsException($"skill {skill} of agent '{agent.Name}' could not be read from {path}: {e.Message}");
            }
        }

        return prompt;
    }
}
