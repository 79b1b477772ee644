using Flotilla.Fleet.Loading;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet;

/// <summary>A skill in Agent Skills format: its front matter's <c>name</c> and <c>description</c>, and the instructions below it.</summary>
public sealed record Skill(string Name, string Description, string Body);

/// <summary>
/// Where pinned instructions and skills live beside the fleet file, and the check that they are there:
/// <c>instructions: ./triage.md@v6</c> is <c>triage@v6.md</c> (the version goes before the extension);
/// <c>skills: [triage-runbook@v3]</c> is the folder <c>skills/triage-runbook@v3/</c> holding a <c>SKILL.md</c> whose YAML
/// front matter gives its <c>name</c> (the skill's) and <c>description</c>.
/// </summary>
public static class PinnedFiles
{
    public static string InstructionsPath(VersionedRef pinned, string directory)
    {
        var name = pinned.Name;
        var extension = Path.GetExtension(name);
        var file = pinned.Version is null ? name : $"{name[..^extension.Length]}@{pinned.Version}{extension}";
        return Path.GetFullPath(Path.Combine(directory, file));
    }

    public static string SkillPath(VersionedRef pinned, string directory) =>
        Path.GetFullPath(Path.Combine(directory, "skills", pinned.ToString(), "SKILL.md"));

    /// <summary>Reads a <c>SKILL.md</c>; throws <see cref="FormatException"/> (saying what is wrong) or an I/O exception.</summary>
    public static Skill ReadSkill(string path, string expectedName)
    {
        var text = File.ReadAllText(path).ReplaceLineEndings("\n");
        var end = text.StartsWith("---\n", StringComparison.Ordinal) ? text.IndexOf("\n---", 3, StringComparison.Ordinal) : -1;
        if (end < 0)
        {
            throw new FormatException("it has no YAML front matter (a first line '---', then name: and description:, then '---')");
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text[4..end]));
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new FormatException($"its front matter is not YAML: {e.Message}");
        }

        var map = stream.Documents.FirstOrDefault()?.RootNode as YamlMappingNode
            ?? throw new FormatException("its front matter is not a mapping with name: and description:");
        string? Value(string key) => map.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlScalarNode scalar ? scalar.Value : null;
        var name = Value("name") ?? throw new FormatException("its front matter has no name");
        var description = Value("description") ?? throw new FormatException("its front matter has no description");
        if (name != expectedName)
        {
            throw new FormatException($"its front matter names it '{name}', not '{expectedName}'");
        }

        var bodyStart = text.IndexOf('\n', end + 1);
        return new Skill(name, description, bodyStart < 0 ? "" : text[(bodyStart + 1)..].Trim());
    }

    /// <summary>Every pinned file the fleet names that is missing or malformed, at the agent that names it.</summary>
    public static IReadOnlyList<FleetError> Check(FleetConfig fleet, string fleetFile)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(fleetFile))!;
        var errors = new List<FleetError>();
        foreach (var agent in fleet.Agents)
        {
            if (agent.Instructions is { } instructions && InstructionsPath(instructions, directory) is var path && !File.Exists(path))
            {
                errors.Add(new FleetError(agent.Location,
                    $"agent '{agent.Name}': instructions {instructions} are the file {Path.GetRelativePath(directory, path)} beside the fleet file, which does not exist; add it or fix the version"));
            }

            foreach (var skill in agent.Skills)
            {
                var skillPath = SkillPath(skill, directory);
                try
                {
                    ReadSkill(skillPath, skill.Name);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    errors.Add(new FleetError(agent.Location,
                        $"agent '{agent.Name}': skill {skill} is the folder {Path.GetRelativePath(directory, Path.GetDirectoryName(skillPath)!)} with a SKILL.md, which cannot be read; add it or fix the version"));
                }
                catch (FormatException e)
                {
                    errors.Add(new FleetError(agent.Location, $"agent '{agent.Name}': skill {skill}: {Path.GetRelativePath(directory, skillPath)}: {e.Message}"));
                }
            }
        }

        return errors;
    }
}
