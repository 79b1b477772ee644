using Flotilla.Fleet.Loading;

namespace Flotilla.Fleet.Tests;

/// <summary>Loads fleet YAML written inline in a test, and finds where a piece of it sits.</summary>
internal static class FleetText
{
    public const string FileName = "fleet.yaml";

    /// <summary>A small valid gateway, as a later document so it does not move the lines a test is about.</summary>
    public const string Gateway = """
        ---
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - { name: sim-small, provider: sim }
            - { name: sim-embed, provider: sim, type: embedding }
          routing:
            virtual_model: assistant
            virtual_models:
              - { name: assistant, targets: [sim-small] }
        """;

    public static FleetLoadResult Load(string yaml) => FleetLoader.Parse(yaml, FileName);

    public static FleetConfig Valid(string yaml)
    {
        var result = Load(yaml);
        result.Errors.ShouldBeEmpty(string.Join(Environment.NewLine, result.Errors));
        result.IsValid.ShouldBeTrue();
        return result.Fleet!;
    }

    public static IReadOnlyList<string> Errors(string yaml)
    {
        var result = Load(yaml);
        result.IsValid.ShouldBeFalse();
        result.Fleet.ShouldBeNull();
        return result.Errors.Select(e => e.ToString()).ToList();
    }

    /// <summary>The single error of a file; fails with the whole list when there are more or none.</summary>
    public static string SingleError(string yaml)
    {
        var errors = Errors(yaml);
        errors.Count.ShouldBe(1, string.Join(Environment.NewLine, errors));
        return errors[0];
    }

    /// <summary>
    /// <c>fleet.yaml:LINE:COL</c> of the <paramref name="occurrence"/>-th appearance of <paramref name="needle"/>,
    /// counted by hand from the text (1-based), so that positions in tests never come from the loader under test.
    /// </summary>
    public static string At(string yaml, string needle, int occurrence = 1)
    {
        var index = -1;
        for (var n = 0; n < occurrence; n++)
        {
            index = yaml.IndexOf(needle, index + 1, StringComparison.Ordinal);
            if (index < 0)
            {
                throw new ArgumentException($"'{needle}' occurs fewer than {occurrence} times", nameof(needle));
            }
        }

        var line = 1;
        var lineStart = 0;
        for (var i = 0; i < index; i++)
        {
            if (yaml[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return $"{FileName}:{line}:{index - lineStart + 1}";
    }
}
