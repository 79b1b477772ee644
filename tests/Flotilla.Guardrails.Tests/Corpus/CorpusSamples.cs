using System.Text.Json;

namespace Flotilla.Guardrails.Tests.Corpus;

public sealed record SecretSample(string Kind, string Text, string Secret);

public sealed record PiiSample(string Kind, string Text, string Value);

public sealed record InjectionSample(string Text, string[] Signals);

/// <summary>The labelled corpora (Corpus/*.json) and the ordinary text that must pass (Corpus/ordinary.txt, samples separated by a blank line).</summary>
public static class CorpusSamples
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true };

    public static IReadOnlyList<SecretSample> Secrets { get; } = Load<SecretSample>("secrets.json");

    public static IReadOnlyList<PiiSample> Pii { get; } = Load<PiiSample>("pii.json");

    public static IReadOnlyList<InjectionSample> Injections { get; } = Load<InjectionSample>("injection.json");

    /// <summary>The ordinary samples: paragraphs of ordinary.txt (samples are separated by a blank line; some span lines).</summary>
    public static IReadOnlyList<string> Ordinary { get; } =
        [.. File.ReadAllText(PathOf("ordinary.txt")).Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    public static string OrdinaryDocument { get; } = File.ReadAllText(PathOf("ordinary.txt"));

    public static TheoryData<string> SecretTexts => [.. Secrets.Select(s => s.Text)];

    private static List<T> Load<T>(string file) =>
        JsonSerializer.Deserialize<List<T>>(File.ReadAllText(PathOf(file)), Json) ?? throw new InvalidDataException(file);

    private static string PathOf(string file) => Path.Combine(AppContext.BaseDirectory, "Corpus", file);
}
