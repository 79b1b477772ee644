using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Loading;

/// <summary>
/// Reads one YAML mapping into typed values, reporting wrong types and unknown keys with their position.
/// Every accessor marks its key as known; <see cref="RejectUnknownKeys"/> reports the rest.
/// </summary>
internal sealed partial class YamlMap
{
    private readonly YamlMappingNode _node;
    private readonly FleetDiagnostics _diagnostics;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    private YamlMap(YamlMappingNode node, string path, FleetDiagnostics diagnostics)
    {
        _node = node;
        Path = path;
        _diagnostics = diagnostics;
    }

    /// <summary>The dotted path of this mapping in the file, for messages (<c>gateway.routing</c>).</summary>
    public string Path { get; }

    public SourceLocation Location => _diagnostics.At(_node);

    public FleetDiagnostics Diagnostics => _diagnostics;

    public static YamlMap? From(YamlNode node, string path, FleetDiagnostics diagnostics)
    {
        if (node is YamlMappingNode map)
        {
            return new YamlMap(map, path, diagnostics);
        }

        if (!IsNull(node))
        {
            diagnostics.Error(node, $"{(path.Length == 0 ? "a fleet document" : path)}: expected a mapping (key: value pairs), found {Describe(node)}");
        }

        return null;
    }

    public IEnumerable<string> Keys => _node.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "");

    public bool Has(string key) => Find(key) is not null;

    public YamlNode? Node(string key)
    {
        _known.Add(key);
        var node = Find(key);
        return node is null || IsNull(node) ? null : node;
    }

    public YamlMap? Map(string key) => Node(key) is { } node ? From(node, Sub(key), _diagnostics) : null;

    public string Sub(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public string? String(string key, bool required = false)
    {
        var node = Node(key);
        if (node is null)
        {
            if (required)
            {
                _diagnostics.Error(_node, $"{Sub(key)} is required; add {key}: … to {(Path.Length == 0 ? "the document" : Path)}");
            }

            return null;
        }

        return Scalar(node, Sub(key));
    }

    public string? Scalar(YamlNode node, string path)
    {
        if (node is YamlScalarNode scalar)
        {
            return scalar.Value ?? "";
        }

        _diagnostics.Error(node, $"{path}: expected a text value, found {Describe(node)}");
        return null;
    }

    public long? Long(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        var node = Node(key);
        return node is null ? null : ParseLong(node, Sub(key), min, max);
    }

    public int? Int(string key, int min = int.MinValue, int max = int.MaxValue) =>
        (int?)Long(key, min, max);

    public long? ParseLong(YamlNode node, string path, long min, long max)
    {
        if (node is YamlScalarNode { Value: { } text } && IntegerPattern().IsMatch(text)
            && long.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max)
            {
                _diagnostics.Error(node, $"{path}: {value} is out of range ({RangeText(min, max)})");
                return null;
            }

            return value;
        }

        _diagnostics.Error(node, $"{path}: expected an integer, found {Describe(node)}");
        return null;
    }

    public double? Double(string key, double min, double max) => (double?)Decimal(key, (decimal)min, (decimal)max);

    public decimal? Decimal(string key, decimal min = decimal.MinValue, decimal max = decimal.MaxValue)
    {
        var node = Node(key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text } && NumberPattern().IsMatch(text)
            && decimal.TryParse(text.Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max)
            {
                _diagnostics.Error(node, $"{Sub(key)}: {text} is out of range ({RangeText(min, max)})");
                return null;
            }

            return value;
        }

        _diagnostics.Error(node, $"{Sub(key)}: expected a number, found {Describe(node)}");
        return null;
    }

    public bool? Bool(string key)
    {
        var node = Node(key);
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode { Value: { } text })
        {
            if (text.Equals("true", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }

            if (text.Equals("false", StringComparison.OrdinalIgnoreCase))
            {
                return false;
            }
        }

        _diagnostics.Error(node, $"{Sub(key)}: expected true or false, found {Describe(node)}");
        return null;
    }

    public TEnum? Enum<TEnum>(string key, IReadOnlyDictionary<string, TEnum> names, bool required = false)
        where TEnum : struct
    {
        var text = String(key, required);
        if (text is null)
        {
            return null;
        }

        if (names.TryGetValue(text, out var value))
        {
            return value;
        }

        _diagnostics.Error(Node(key)!, $"{Sub(key)}: '{text}' is not one of {string.Join(", ", names.Keys)}");
        return null;
    }

    /// <summary>A sequence; a single scalar is not promoted to a list (that hides typos).</summary>
    public IReadOnlyList<YamlNode> Sequence(string key)
    {
        var node = Node(key);
        if (node is null)
        {
            return [];
        }

        if (node is YamlSequenceNode sequence)
        {
            return sequence.Children.Where(c => !IsNull(c)).ToList();
        }

        _diagnostics.Error(node, $"{Sub(key)}: expected a list, found {Describe(node)}");
        return [];
    }

    public IReadOnlyList<string> StringList(string key) => StringItems(key).Select(item => item.Value).ToList();

    /// <summary>A list of text values, each with where it was written.</summary>
    public IReadOnlyList<(string Value, SourceLocation Location)> StringItems(string key)
    {
        var result = new List<(string, SourceLocation)>();
        foreach (var item in Sequence(key))
        {
            if (Scalar(item, Sub(key)) is { } text)
            {
                result.Add((text, _diagnostics.At(item)));
            }
        }

        return result;
    }

    /// <summary>Integers, quoted or not: the seed writes status codes as <c>["429","500"]</c>.</summary>
    public IReadOnlyList<int>? IntList(string key, int min = int.MinValue, int max = int.MaxValue)
    {
        if (Node(key) is null)
        {
            return null;
        }

        var result = new List<int>();
        foreach (var item in Sequence(key))
        {
            if (ParseLong(item, Sub(key), min, max) is { } value)
            {
                result.Add((int)value);
            }
        }

        return result;
    }

    /// <summary>A credential: only <c>${env:NAME}</c> is accepted, and a literal is never echoed back.</summary>
    public SecretReference? Secret(string key)
    {
        var node = Node(key);
        if (node is null)
        {
            return null;
        }

        var text = Scalar(node, Sub(key));
        if (text is null)
        {
            return null;
        }

        if (ParseSecret(text) is { } secret)
        {
            return secret;
        }

        _diagnostics.Error(node, text.Contains("${", StringComparison.Ordinal)
            ? $"{Sub(key)}: not a valid reference; write exactly \"${{env:NAME}}\" (NAME: letters, digits and '_', not starting with a digit)"
            : $"{Sub(key)}: literal credentials are not allowed in the fleet file; put the value in an environment variable and write \"${{env:NAME}}\" here");
        return null;
    }

    /// <summary>A header or option value: a literal, or a secret reference when it looks like one.</summary>
    public IReadOnlyDictionary<string, ConfigValue> ValueMap(string key)
    {
        var map = Map(key);
        if (map is null)
        {
            return new Dictionary<string, ConfigValue>();
        }

        var result = new Dictionary<string, ConfigValue>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in map.Keys.ToList())
        {
            var text = map.String(name);
            if (text is null)
            {
                continue;
            }

            if (ParseSecret(text) is { } secret)
            {
                result[name] = new ConfigValue(null, secret);
                continue;
            }

            if (text.Contains("${", StringComparison.Ordinal))
            {
                _diagnostics.Error(map.LocationOf(name), $"{map.Sub(name)}: a reference must be the whole value, exactly \"${{env:NAME}}\" (NAME: letters, digits, '_'); put any prefix into the environment variable itself");
                continue;
            }

            result[name] = new ConfigValue(text, null);
        }

        return result;
    }

    public IReadOnlyDictionary<string, string> StringMap(string key)
    {
        var map = Map(key);
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (map is null)
        {
            return result;
        }

        foreach (var name in map.Keys.ToList())
        {
            if (map.String(name) is { } text)
            {
                result[name] = text;
            }
        }

        return result;
    }

    public TimeSpan? Duration(string key)
    {
        var text = String(key);
        if (text is null)
        {
            return null;
        }

        if (TryParseDuration(text, out var duration))
        {
            return duration;
        }

        _diagnostics.Error(Node(key)!, $"{Sub(key)}: '{text}' is not a duration; write e.g. 500ms, 30s, 5m, 1h or 7d");
        return null;
    }

    /// <summary>Where the value of <paramref name="key"/> starts; the mapping itself when the key is absent.</summary>
    public SourceLocation LocationOf(string key) => Find(key) is { } node ? _diagnostics.At(node) : Location;

    /// <summary>Where <paramref name="key"/> itself is written; the mapping itself when the key is absent.</summary>
    public SourceLocation KeyLocationOf(string key) =>
        _node.Children.Keys.FirstOrDefault(k => k is YamlScalarNode { Value: var v } && v == key) is { } keyNode ? _diagnostics.At(keyNode) : Location;

    /// <summary>Reports every key no accessor asked for, with the closest known key or the section it belongs in.</summary>
    /// <param name="belongsIn">Keys that are valid elsewhere, mapped to the section they belong in (<c>retries</c> → <c>gateway.routing</c>).</param>
    public void RejectUnknownKeys(IReadOnlyDictionary<string, string>? belongsIn = null)
    {
        foreach (var (keyNode, _) in _node.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "";
            if (_known.Contains(key))
            {
                continue;
            }

            var known = string.Join(", ", _known.Order(StringComparer.Ordinal));
            if (belongsIn is not null && belongsIn.TryGetValue(key, out var section))
            {
                _diagnostics.Error(keyNode, $"{Sub(key)}: this key belongs under {section}; move it there");
            }
            else if (Suggest(key, _known) is { } hint)
            {
                _diagnostics.Error(keyNode, $"{Sub(key)}: unknown key; did you mean '{hint}'? (known: {known})");
            }
            else
            {
                _diagnostics.Error(keyNode, $"{Sub(key)}: unknown key; remove it or use one of: {known}");
            }
        }
    }

    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = default;
        var match = DurationPattern().Match(text.Trim());
        if (!match.Success)
        {
            return false;
        }

        var amount = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        duration = match.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(amount),
            "" or "s" => TimeSpan.FromSeconds(amount),
            "m" => TimeSpan.FromMinutes(amount),
            "h" => TimeSpan.FromHours(amount),
            "d" => TimeSpan.FromDays(amount),
            _ => TimeSpan.Zero,
        };
        return duration > TimeSpan.Zero;
    }

    public static SecretReference? ParseSecret(string text)
    {
        var match = SecretPattern().Match(text);
        return match.Success ? new SecretReference(match.Groups[1].Value) : null;
    }

    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode { Value: { } v } when FleetDiagnostics.LooksLikeCredential(v) => "a credential-shaped value (not shown)",
        YamlScalarNode { Value: { } v } => $"'{(v.Length > 40 ? v[..40] + "…" : v)}'",
        _ => "nothing",
    };

    private YamlNode? Find(string key) =>
        _node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? value : null;

    private static string RangeText<T>(T min, T max) where T : IComparable<T> =>
        (min, max) switch
        {
            _ when min.Equals(default) && max.ToString()!.Length > 12 => "at least 0",
            _ when max.ToString()!.Length > 12 => $"at least {min}",
            _ => $"{min}..{max}",
        };

    // Close spellings first (max_token_per_run), then a known key that contains the unknown one or the reverse (max_tokens).
    private static string? Suggest(string key, IEnumerable<string> known)
    {
        var lower = key.ToLowerInvariant().Replace('-', '_');
        return known.Select(k => (k, d: Distance(lower, k))).Where(x => x.d <= 2).OrderBy(x => x.d).ThenBy(x => x.k, StringComparer.Ordinal).Select(x => x.k).FirstOrDefault()
            ?? known.Where(k => lower.Length >= 4 && (k.Contains(lower, StringComparison.Ordinal) || lower.Contains(k, StringComparison.Ordinal)))
                .Order(StringComparer.Ordinal).FirstOrDefault();
    }

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
        }

        return d[a.Length, b.Length];
    }

    [GeneratedRegex(@"^[+-]?[0-9][0-9_]*$")]
    private static partial Regex IntegerPattern();

    [GeneratedRegex(@"^[+-]?([0-9][0-9_]*)?(\.[0-9]+)?([eE][+-]?[0-9]+)?$")]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")]
    private static partial Regex SecretPattern();

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d|)$")]
    private static partial Regex DurationPattern();
}
