using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Loading;

/// <summary>One problem in a fleet file, printed as <c>FILE:LINE:COL: message</c>.</summary>
public sealed record FleetError(SourceLocation Location, string Message)
{
    public override string ToString() => $"{Location}: {Message}";
}

/// <summary>Collects every error instead of stopping at the first, as a validator should.</summary>
internal sealed class FleetDiagnostics(string file)
{
    private readonly List<FleetError> _errors = [];

    public string File { get; } = file;

    public IReadOnlyList<FleetError> Errors => _errors;

    public SourceLocation At(YamlNode node) => At(node.Start);

    public SourceLocation At(Mark mark) => new(File, (int)mark.Line, (int)mark.Column);

    public void Error(YamlNode node, string message) => _errors.Add(new FleetError(At(node), message));

    public void Error(SourceLocation location, string message) => _errors.Add(new FleetError(location, message));
}
