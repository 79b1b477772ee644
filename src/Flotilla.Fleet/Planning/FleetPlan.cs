using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Planning;

/// <summary>
/// What applying one fleet file over another would change, section by section and agent by agent, field by field:
/// <code>
/// + agent dependency-bump
/// ~ agent bug-report-triage: instructions ./triage.md@v6 → ./triage.md@v7
/// ~ gateway.budgets[0].limit 50/day → 80/day
/// - mcp_server linear
/// </code>
/// It compares what the files say, not how they say it: comments, key order, quoting and flow versus block style are not
/// changes. List items with a <c>name</c> (or a route target's <c>model</c>, a grant's <c>server</c>) are matched by it;
/// other lists of mappings by position; lists of plain values are compared whole. Both texts must be valid YAML.
/// </summary>
public static class FleetPlan
{
    private const int MaxValueLength = 80;

    /// <summary>The value recorded for a list item matched by name: its fields follow under its path.</summary>
    private const string ItemMarker = "\u0000item";

    /// <summary>Prefix of the value recorded for the order of a list matched by name (order can matter: route targets).</summary>
    private const string OrderMarker = "\u0000order:";

    /// <summary>Keys whose values may carry a credential in a URL (a Slack webhook's path is its secret): shown as host only.</summary>
    private static readonly string[] UrlKeys = ["url", "webhook", "base_url", "otlp_endpoint"];
    private static readonly string[] IdentityKeys = ["name", "model", "server"];

    /// <summary>The changes from <paramref name="before"/> (null: nothing applied yet) to <paramref name="after"/>; empty when none.</summary>
    public static IReadOnlyList<string> Compare(string? before, string after)
    {
        var old = Entities(before);
        var @new = Entities(after);
        var changes = new List<string>();
        foreach (var (entity, fields) in @new)
        {
            if (!old.TryGetValue(entity, out var oldFields))
            {
                changes.Add($"+ {entity}");
                continue;
            }

            var section = entity == "gateway";
            string? addedItem = null;
            foreach (var (path, value) in fields)
            {
                if (addedItem is not null && path.StartsWith(addedItem, StringComparison.Ordinal))
                {
                    continue;
                }

                if (!oldFields.TryGetValue(path, out var was))
                {
                    // A whole new list item is one line, not one per field.
                    if (value.StartsWith(OrderMarker, StringComparison.Ordinal))
                    {
                        continue;
                    }

                    var shown = value == ItemMarker ? "" : " " + Show(value, path);
                    addedItem = value == ItemMarker ? path + "." : null;
                    changes.Add(section ? $"+ {path}{shown}" : $"~ {entity}: + {path}{shown}");
                }
                else if (was != value)
                {
                    if (value.StartsWith(OrderMarker, StringComparison.Ordinal))
                    {
                        // Items added or removed are reported on their own; a reorder of the same items is a change too.
                        var (oldOrder, newOrder) = (was[OrderMarker.Length..], value[OrderMarker.Length..]);
                        if (Sorted(oldOrder) == Sorted(newOrder))
                        {
                            changes.Add(section ? $"~ {path} {Show(oldOrder)} → {Show(newOrder)}" : $"~ {entity}: {path} {Show(oldOrder)} → {Show(newOrder)}");
                        }

                        continue;
                    }

                    changes.Add(section ? $"~ {path} {Show(was, path)} → {Show(value, path)}" : $"~ {entity}: {path} {Show(was, path)} → {Show(value, path)}");
                }
            }

            string? removedItem = null;
            foreach (var (path, value) in oldFields.Where(f => !fields.ContainsKey(f.Key) && !f.Value.StartsWith(OrderMarker, StringComparison.Ordinal)))
            {
                if (removedItem is not null && path.StartsWith(removedItem, StringComparison.Ordinal))
                {
                    continue;
                }

                removedItem = value == ItemMarker ? path + "." : null;
                changes.Add(section ? $"- {path}" : $"~ {entity}: - {path}");
            }
        }

        foreach (var (entity, _) in old.Where(e => !@new.ContainsKey(e.Key)))
        {
            changes.Add($"- {entity}");
        }

        return changes;
    }

    private static string Sorted(string order) => string.Join(", ", order.Split(", ").Order(StringComparer.Ordinal));

    private static string Show(string value, string? path = null)
    {
        if (path is not null && UrlKeys.Contains(path[(path.LastIndexOf('.') + 1)..]) && Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            // The plan is printed, stored with the revision and logged on SIGHUP: a URL shows its host and a fingerprint.
            value = $"{uri.Scheme}://{uri.Authority}/… (#{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(value)).AsSpan(0, 4))})";
        }
        else if (path is not null && path.Contains(".headers.", StringComparison.Ordinal) && !value.StartsWith("${env:", StringComparison.Ordinal))
        {
            value = "(a literal header value, not shown)";
        }

        value = Loading.FleetDiagnostics.RedactCredentials(value);
        value = DisplayText.Safe(value);
        return value.Length <= MaxValueLength ? value : value[..MaxValueLength] + "…";
    }

    /// <summary>Each top-level thing the file declares (the gateway, each MCP server, each agent) with its fields flattened to paths.</summary>
    private static OrderedMap<OrderedMap<string>> Entities(string? yaml)
    {
        var entities = new OrderedMap<OrderedMap<string>>();
        if (string.IsNullOrWhiteSpace(yaml))
        {
            return entities;
        }

        var stream = new YamlStream();
        stream.Load(new StringReader(yaml));
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is not YamlMappingNode root)
            {
                continue;
            }

            foreach (var (keyNode, value) in root.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value ?? "";
                switch (key)
                {
                    case "gateway":
                        Flatten(value, "gateway", entities.GetOrAdd("gateway", static () => new()));
                        break;
                    case "mcp_server" or "agent":
                        AddNamed(entities, key, value);
                        break;
                    case "mcp_servers" or "agents" when value is YamlSequenceNode items:
                        foreach (var item in items)
                        {
                            AddNamed(entities, key[..^1], item);
                        }

                        break;
                }
            }
        }

        return entities;
    }

    private static void AddNamed(OrderedMap<OrderedMap<string>> entities, string kind, YamlNode node)
    {
        var name = node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode("name"), out var n) ? (n as YamlScalarNode)?.Value : null;
        var fields = entities.GetOrAdd($"{kind} {name ?? "(unnamed)"}", static () => new());
        if (node is YamlMappingNode mapping)
        {
            foreach (var (keyNode, value) in mapping.Children)
            {
                var key = (keyNode as YamlScalarNode)?.Value ?? "";
                if (key != "name")
                {
                    Flatten(value, key, fields);
                }
            }
        }
    }

    private static void Flatten(YamlNode node, string path, OrderedMap<string> fields)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                foreach (var (keyNode, value) in mapping.Children)
                {
                    Flatten(value, $"{path}.{(keyNode as YamlScalarNode)?.Value}", fields);
                }

                break;
            case YamlSequenceNode sequence when sequence.Children.Count > 0 && sequence.All(i => i is YamlMappingNode):
                var identity = IdentityKeys.FirstOrDefault(k => sequence.All(i => Scalar((YamlMappingNode)i, k) is not null));
                if (identity is not null)
                {
                    fields[path] = OrderMarker + string.Join(", ", sequence.Cast<YamlMappingNode>().Select(i => Scalar(i, identity)));
                }

                var index = 0;
                foreach (var item in sequence.Cast<YamlMappingNode>())
                {
                    var itemPath = $"{path}[{(identity is null ? index.ToString(System.Globalization.CultureInfo.InvariantCulture) : Scalar(item, identity))}]";
                    if (identity is not null)
                    {
                        fields[itemPath] = ItemMarker;
                    }

                    Flatten(item, itemPath, fields);
                    index++;
                }

                break;
            default:
                fields[path] = Compact(node);
                break;
        }
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var value) && value is YamlScalarNode { Value: { } text } ? text : null;

    /// <summary>A value on one line, in flow style: <c>[a, b]</c>, <c>{ server: linear, tools: [x] }</c>.</summary>
    private static string Compact(YamlNode node)
    {
        var text = new StringBuilder();
        Write(node, text);
        return text.ToString();

        static void Write(YamlNode node, StringBuilder text)
        {
            switch (node)
            {
                case YamlScalarNode scalar:
                    text.Append(scalar.Value ?? "null");
                    break;
                case YamlSequenceNode sequence:
                    text.Append('[');
                    var first = true;
                    foreach (var item in sequence)
                    {
                        text.Append(first ? "" : ", ");
                        Write(item, text);
                        first = false;
                    }

                    text.Append(']');
                    break;
                case YamlMappingNode mapping:
                    text.Append("{ ");
                    var firstPair = true;
                    foreach (var (key, value) in mapping.Children)
                    {
                        text.Append(firstPair ? "" : ", ");
                        Write(key, text);
                        text.Append(": ");
                        Write(value, text);
                        firstPair = false;
                    }

                    text.Append(" }");
                    break;
            }
        }
    }

    /// <summary>A dictionary that remembers insertion order, so the plan follows the file.</summary>
    private sealed class OrderedMap<T> : IEnumerable<KeyValuePair<string, T>>
        where T : class
    {
        private readonly Dictionary<string, T> _values = new(StringComparer.Ordinal);
        private readonly List<string> _order = [];

        public T this[string key]
        {
            set
            {
                if (!_values.ContainsKey(key))
                {
                    _order.Add(key);
                }

                _values[key] = value;
            }
        }

        public bool TryGetValue(string key, out T value) => _values.TryGetValue(key, out value!);

        public bool ContainsKey(string key) => _values.ContainsKey(key);

        public T GetOrAdd(string key, Func<T> create)
        {
            if (!_values.TryGetValue(key, out var value))
            {
                value = create();
                this[key] = value;
            }

            return value;
        }

        public IEnumerator<KeyValuePair<string, T>> GetEnumerator() => _order.Select(k => new KeyValuePair<string, T>(k, _values[k])).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
