using Flotilla.Fleet.Loading;

namespace Flotilla.Fleet;

/// <summary>Durations as the fleet file and the CLI write them: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, <c>7d</c>.</summary>
public static class DurationText
{
    public static bool TryParse(string text, out TimeSpan duration) => YamlMap.TryParseDuration(text, out duration);
}
