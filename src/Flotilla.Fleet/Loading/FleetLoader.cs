using System.Globalization;
using System.Text.RegularExpressions;
using Cronos;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Flotilla.Fleet.Loading;

/// <summary>The outcome of loading a fleet file: the configuration when valid, and every error found.</summary>
public sealed record FleetLoadResult(FleetConfig? Fleet, IReadOnlyList<FleetError> Errors)
{
    public bool IsValid => Errors.Count == 0 && Fleet is not null;
}

/// <summary>
/// Loads the multi-document fleet file. Each document holds any of <c>gateway</c>, <c>mcp_server</c>,
/// <c>mcp_servers</c>, <c>agent</c> and <c>agents</c>. All errors are collected, then cross-references are
/// checked by <see cref="FleetValidator"/>.
/// </summary>
public static partial class FleetLoader
{
    private static readonly Dictionary<string, ProviderType> ProviderTypes = new()
    {
        ["openai"] = ProviderType.OpenAI, ["anthropic"] = ProviderType.Anthropic, ["simulated"] = ProviderType.Simulated,
    };

    private static readonly Dictionary<string, RoutingStrategy> Strategies = new()
    {
        ["priority"] = RoutingStrategy.Priority, ["weight"] = RoutingStrategy.Weight, ["latency"] = RoutingStrategy.Latency,
    };

    private static readonly Dictionary<string, bool> DenialPolicies = new() { ["continue"] = false, ["end"] = true };
    private static readonly Dictionary<string, MissedBeats> MissedPolicies = new() { ["skip"] = MissedBeats.Skip, ["run_once"] = MissedBeats.RunOnce };
    private static readonly Dictionary<string, ModelKind> ModelKinds = new() { ["chat"] = ModelKind.Chat, ["embedding"] = ModelKind.Embedding };

    private static readonly Dictionary<string, CacheType> CacheTypes = new() { ["exact"] = CacheType.Exact, ["semantic"] = CacheType.Semantic };

    private static readonly Dictionary<string, CacheNamespace> CacheNamespaces = new()
    {
        ["agent"] = CacheNamespace.Agent, ["team"] = CacheNamespace.Team, ["none"] = CacheNamespace.None,
    };

    private static readonly Dictionary<string, GuardrailAction> GuardrailActions = new()
    {
        ["block"] = GuardrailAction.Block, ["redact"] = GuardrailAction.Redact, ["audit"] = GuardrailAction.Audit,
    };

    private static readonly Dictionary<string, PolicyMode> PolicyModes = new() { ["enforce"] = PolicyMode.Enforce, ["audit"] = PolicyMode.Audit };

    private static readonly Dictionary<string, McpTransport> Transports = new() { ["http"] = McpTransport.Http, ["stdio"] = McpTransport.Stdio };

    private static readonly Dictionary<string, McpAuthType> AuthTypes = new()
    {
        ["none"] = McpAuthType.None, ["bearer"] = McpAuthType.Bearer, ["header"] = McpAuthType.Header, ["per_user"] = McpAuthType.PerUser,
    };

    private static readonly Dictionary<string, BudgetWindow> Windows = new()
    {
        ["minute"] = BudgetWindow.Minute, ["hour"] = BudgetWindow.Hour, ["day"] = BudgetWindow.Day,
        ["week"] = BudgetWindow.Week, ["month"] = BudgetWindow.Month,
    };

    // Keys written in the wrong section get "belongs under X" instead of a bare "unknown key".
    private static readonly Dictionary<string, string> RoutingKeys = new()
    {
        ["virtual_model"] = "gateway.routing", ["virtual_models"] = "gateway.routing", ["retries"] = "gateway.routing",
        ["cooldown"] = "gateway.routing", ["request_timeout_ms"] = "gateway.routing",
    };

    private static readonly Dictionary<string, string> GatewayKeys = new()
    {
        ["providers"] = "gateway", ["models"] = "gateway", ["caching"] = "gateway", ["guardrails"] = "gateway", ["budgets"] = "gateway",
        ["rate_limits"] = "gateway", ["alerts"] = "gateway", ["destructive_tools"] = "gateway", ["limits"] = "gateway",
        ["traces"] = "gateway", ["telemetry"] = "gateway", ["artifacts"] = "gateway",
    };

    private static readonly Dictionary<string, McpAccess> Accesses = new() { ["read"] = McpAccess.Read, ["write"] = McpAccess.Write };

    private static readonly Dictionary<string, AgentRole> Roles = new() { ["maker"] = AgentRole.Maker, ["checker"] = AgentRole.Checker };

    private static readonly Dictionary<string, string> AgentMisplacedKeys = new()
    {
        ["max_steps"] = "harness", ["max_tokens_per_run"] = "harness", ["timeout_seconds"] = "harness", ["max_cost_per_run"] = "harness", ["stuck_after"] = "harness", ["on_denied"] = "harness",
        ["schedule"] = "trigger", ["timezone"] = "trigger",
    };

    private const string SyntaxHint = "check indentation, quotes and brackets at or just before this position";

    /// <summary>Reads and validates a fleet file from disk.</summary>
    public static FleetLoadResult LoadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new FleetLoadResult(null, [new FleetError(new SourceLocation(path, 1, 1), $"cannot read the fleet file: {e.Message}")]);
        }

        var result = Parse(text, path);
        if (!result.IsValid)
        {
            return result;
        }

        // Pinned instructions and skills are files beside the fleet file: a fleet naming one that is not there is refused.
        var missing = PinnedFiles.Check(result.Fleet!, path);
        return missing.Count == 0 ? result : new FleetLoadResult(null, missing);
    }

    /// <summary>Parses and validates fleet YAML; <paramref name="file"/> names it in messages.</summary>
    public static FleetLoadResult Parse(string yaml, string file)
    {
        var diagnostics = new FleetDiagnostics(file);
        var stream = new YamlStream();
        var scanner = new Scanner(new StringReader(yaml));
        try
        {
            stream.Load(new Parser(scanner));
        }
        catch (YamlException e)
        {
            var message = StripMarks(e.InnerException?.Message ?? e.Message).TrimEnd('.');
            var hint = message.StartsWith("Duplicate key", StringComparison.Ordinal) ? "a key appears once per mapping; merge or remove one" : SyntaxHint;
            diagnostics.Error(diagnostics.At(e.Start), $"YAML syntax: {message}; {hint}");
            return new FleetLoadResult(null, diagnostics.Errors);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet fails this way on some malformed flow collections; the scanner still knows where it stopped.
            diagnostics.Error(diagnostics.At(scanner.CurrentPosition), $"YAML syntax: cannot read the text here (an unclosed '[' or '{{' above?); {SyntaxHint}");
            return new FleetLoadResult(null, diagnostics.Errors);
        }

        GatewayConfig? gateway = null;
        SourceLocation? gatewayLocation = null;
        var servers = new List<McpServerConfig>();
        var agents = new List<AgentConfig>();
        foreach (var document in stream.Documents)
        {
            if (YamlMap.IsNull(document.RootNode))
            {
                continue;
            }

            var root = YamlMap.From(document.RootNode, "", diagnostics);
            if (root is null)
            {
                continue;
            }

            if (root.Node("gateway") is { } gatewayNode)
            {
                if (gatewayLocation is { } first)
                {
                    diagnostics.Error(root.KeyLocationOf("gateway"), $"gateway: declared more than once (first at {first}); the fleet has one gateway section, merge them");
                }
                else
                {
                    gatewayLocation = root.KeyLocationOf("gateway");
                    gateway = ReadGateway(YamlMap.From(gatewayNode, "gateway", diagnostics));
                }
            }

            if (root.Node("mcp_server") is { } serverNode
                && MapOrHint(serverNode, "mcp_server", "a list: for several servers write mcp_servers: [...] or one mcp_server: per document", diagnostics) is { } server)
            {
                servers.Add(ReadMcpServer(server));
            }

            if (root.Node("mcp_servers") is { } serversNode)
            {
                foreach (var (item, index) in ListOrHint(serversNode, "mcp_servers", "for a single server write mcp_server:", diagnostics))
                {
                    if (YamlMap.From(item, $"mcp_servers[{index}]", diagnostics) is { } map)
                    {
                        servers.Add(ReadMcpServer(map));
                    }
                }
            }

            if (root.Node("agent") is { } agentNode
                && MapOrHint(agentNode, "agent", "a list: for several agents write agents: [...] or one agent: per document", diagnostics) is { } agent)
            {
                agents.Add(ReadAgent(agent));
            }

            if (root.Node("agents") is { } agentsNode)
            {
                foreach (var (item, index) in ListOrHint(agentsNode, "agents", "for a single agent write agent:", diagnostics))
                {
                    if (YamlMap.From(item, $"agents[{index}]", diagnostics) is { } map)
                    {
                        agents.Add(ReadAgent(map));
                    }
                }
            }

            root.RejectUnknownKeys();
        }

        foreach (var node in stream.Documents.SelectMany(d => d.AllNodes).OfType<YamlScalarNode>())
        {
            if (node.Value is { Length: >= 16 } value && FleetDiagnostics.LooksLikeCredential(value) && !diagnostics.HasErrorAt(diagnostics.At(node)))
            {
                diagnostics.Error(node, "this looks like a literal credential; put it in an environment variable, write \"${env:NAME}\" here, and rotate it since it has been written to a file");
            }
        }

        var fleet = new FleetConfig(gateway ?? GatewayConfig.Empty, servers, agents);
        FleetValidator.Validate(fleet, diagnostics);
        var errors = diagnostics.Errors.OrderBy(e => e.Location.Line).ThenBy(e => e.Location.Column).ToList();
        return new FleetLoadResult(errors.Count == 0 ? fleet : null, errors);
    }

    private static GatewayConfig ReadGateway(YamlMap? map)
    {
        if (map is null)
        {
            return GatewayConfig.Empty;
        }

        var providers = Items(map, "providers").Select(ReadProvider).ToList();
        var models = Items(map, "models").Select(ReadModel).ToList();
        var routing = ReadRouting(map.Map("routing"));
        var caching = map.Map("caching") is { } c ? ReadCaching(c) : null;
        var guardrails = ReadGuardrails(map.Map("guardrails"));
        var budgets = Items(map, "budgets").Select(ReadBudget).ToList();
        var rateLimits = Items(map, "rate_limits").Select(ReadRateLimit).ToList();
        AlertsConfig? alerts = null;
        if (map.Map("alerts") is { } alertMap)
        {
            alerts = new AlertsConfig(ReadUri(alertMap, "webhook"));
            alertMap.RejectUnknownKeys();
        }

        var destructive = map.StringList("destructive_tools");
        var limits = LimitsConfig.Default;
        if (map.Map("limits") is { } limitMap)
        {
            limits = new LimitsConfig(limitMap.Long("max_request_body_bytes", 1024, 256L * 1024 * 1024) ?? limits.MaxRequestBodyBytes);
            limitMap.RejectUnknownKeys();
        }

        var traces = TracesConfig.Default;
        if (map.Map("traces") is { } traceMap)
        {
            if (traceMap.Duration("retention") is { } retention)
            {
                if (retention < TimeSpan.FromHours(1))
                {
                    traceMap.Diagnostics.Error(traceMap.LocationOf("retention"), $"{traceMap.Sub("retention")}: keep traces at least 1h (e.g. 30d)");
                }
                else
                {
                    traces = new TracesConfig(retention);
                }
            }

            traceMap.RejectUnknownKeys();
        }

        var telemetry = TelemetryConfig.Default;
        if (map.Map("telemetry") is { } telemetryMap)
        {
            telemetry = new TelemetryConfig(telemetryMap.Bool("metrics") ?? true, ReadUri(telemetryMap, "otlp_endpoint"));
            telemetryMap.RejectUnknownKeys();
        }

        var artifacts = Items(map, "artifacts").Select(ReadArtifact).ToList();
        var mcp = map.Map("mcp") is { } mcpMap ? ReadMcpSettings(mcpMap) : McpGatewayConfig.Default;
        var responses = ResponsesConfig.Default;
        if (map.Map("responses") is { } responsesMap)
        {
            var ttl = responsesMap.Duration("ttl") ?? responses.Ttl;
            if (ttl < TimeSpan.FromMinutes(1) || ttl > TimeSpan.FromDays(365))
            {
                responsesMap.Diagnostics.Error(responsesMap.LocationOf("ttl"), $"{responsesMap.Sub("ttl")}: use between 1m and 365d (e.g. 30d)");
            }

            responses = new ResponsesConfig(ttl);
            responsesMap.RejectUnknownKeys();
        }

        map.RejectUnknownKeys(RoutingKeys);
        return new GatewayConfig(providers, models, routing, caching, guardrails, budgets, rateLimits, alerts, destructive, limits, traces, telemetry)
        {
            Artifacts = artifacts,
            Mcp = mcp,
            Responses = responses,
        };
    }

    private static ProviderConfig ReadProvider(YamlMap map)
    {
        var name = map.String("name", required: true) ?? "";
        var type = map.Enum("type", ProviderTypes, required: true) ?? ProviderType.Simulated;
        var baseUrl = ReadUri(map, "base_url");
        var apiKey = map.Secret("api_key");
        var headers = map.ValueMap("headers");
        var simulation = SimulationConfig.Default;
        if (map.Map("simulate") is { } sim)
        {
            simulation = new SimulationConfig(
                sim.Int("latency_ms", 0, 600_000) ?? 0,
                sim.Int("chunk_delay_ms", 0, 60_000) ?? 0,
                sim.Int("fail_with_status", 400, 599));
            sim.RejectUnknownKeys();
            if (type != ProviderType.Simulated)
            {
                map.Diagnostics.Error(map.KeyLocationOf("simulate"), $"{map.Sub("simulate")}: only a simulated provider takes simulate options; remove it or use type: simulated");
            }
        }

        map.RejectUnknownKeys();
        return new ProviderConfig(name, type, baseUrl, apiKey, headers, simulation, map.Location);
    }

    private static ModelConfig ReadModel(YamlMap map)
    {
        var name = map.String("name", required: true) ?? "";
        var provider = map.String("provider", required: true) ?? "";
        var upstream = map.String("model") ?? name;
        var price = ModelPrice.Free;
        if (map.Map("price") is { } priceMap)
        {
            price = new ModelPrice(
                priceMap.Decimal("input_per_million", 0) ?? 0,
                priceMap.Decimal("output_per_million", 0) ?? 0);
            priceMap.RejectUnknownKeys();
        }

        DateOnly? deprecated = null;
        if (map.String("deprecated_after") is { } dateText)
        {
            if (DateOnly.TryParseExact(dateText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
            {
                deprecated = date;
            }
            else
            {
                map.Diagnostics.Error(map.LocationOf("deprecated_after"), $"{map.Sub("deprecated_after")}: '{dateText}' is not a date; write YYYY-MM-DD");
            }
        }

        var kind = map.Enum("type", ModelKinds) ?? ModelKind.Chat;
        var script = Items(map, "script").Select(ReadScriptStep).ToList();
        map.RejectUnknownKeys();
        var model = new ModelConfig(name, provider, upstream, price, deprecated, kind, map.Location) { Script = script };
        if (script.Count > 0)
        {
            map.Diagnostics.Remember(model, "script", map.KeyLocationOf("script"));
        }

        map.Diagnostics.Remember(model, "provider", map.LocationOf("provider"));
        return model;
    }

    /// <summary><c>{ tool: NAME, args: { … } }</c>, <c>{ calls: [ { tool, args }, … ] }</c>, <c>{ text: "…" }</c> or <c>{ last_tool_result: true }</c>.</summary>
    private static ScriptStep ReadScriptStep(YamlMap map)
    {
        if (map.Has("calls"))
        {
            var calls = Items(map, "calls").Select(ReadScriptStep).ToList();
            if (calls.Count == 0 || calls.Any(c => c.Calls.Count != 1))
            {
                map.Diagnostics.Error(map.LocationOf("calls"), $"{map.Sub("calls")}: a list of {{ tool: NAME, args: {{…}} }}, made in one answer");
            }

            map.RejectUnknownKeys();
            return new ScriptStep([.. calls.SelectMany(c => c.Calls)], null, false);
        }

        var tool = map.String("tool");
        var text = map.String("text");
        var last = map.Bool("last_tool_result") ?? false;
        string? arguments = null;
        if (map.Node("args") is { } args)
        {
            if (args is not YamlMappingNode)
            {
                map.Diagnostics.Error(map.LocationOf("args"), $"{map.Sub("args")}: expected a mapping of argument names to values");
            }
            else
            {
                arguments = YamlJson.ToJson(args);
            }
        }

        if ((tool is null ? 0 : 1) + (text is null ? 0 : 1) + (last ? 1 : 0) != 1)
        {
            map.Diagnostics.Error(map.Location, $"{map.Path}: a script step is one of {{ tool: NAME, args: {{…}} }}, {{ text: \"…\" }} or {{ last_tool_result: true }}");
        }
        else if (arguments is not null && tool is null)
        {
            map.Diagnostics.Error(map.LocationOf("args"), $"{map.Sub("args")}: only a tool step takes args");
        }

        map.RejectUnknownKeys();
        return new ScriptStep(tool is null ? [] : [new ScriptCall(tool, arguments ?? "{}")], text, last);
    }

    private static RoutingConfig ReadRouting(YamlMap? map)
    {
        if (map is null)
        {
            return RoutingConfig.Default;
        }

        var defaultModel = map.String("virtual_model");
        var defaultLocation = map.Has("virtual_model") ? map.LocationOf("virtual_model") : (SourceLocation?)null;
        var virtualModels = Items(map, "virtual_models").Select(ReadVirtualModel).ToList();
        var retries = RetryConfig.Default;
        if (map.Map("retries") is { } r)
        {
            retries = new RetryConfig(
                r.Int("attempts", 0, 10) ?? retries.Attempts,
                r.IntList("on_status_codes", 100, 599) ?? retries.OnStatusCodes,
                r.Int("base_delay_ms", 0, 60_000) ?? retries.BaseDelayMs,
                r.Int("max_delay_ms", 0, 600_000) ?? retries.MaxDelayMs);
            r.RejectUnknownKeys();
        }

        var cooldown = CooldownConfig.Default;
        if (map.Map("cooldown") is { } c)
        {
            cooldown = new CooldownConfig(c.Int("failures", 1, 1000) ?? cooldown.Failures, c.Int("seconds", 0, 86_400) ?? cooldown.Seconds);
            c.RejectUnknownKeys();
        }

        var timeout = map.Int("request_timeout_ms", 1, 3_600_000) ?? RoutingConfig.Default.RequestTimeoutMs;
        map.RejectUnknownKeys(GatewayKeys);
        return new RoutingConfig(defaultModel, virtualModels, retries, cooldown, timeout, defaultLocation);
    }

    private static VirtualModelConfig ReadVirtualModel(YamlMap map)
    {
        var name = map.String("name", required: true) ?? "";
        var strategy = map.Enum("strategy", Strategies) ?? RoutingStrategy.Priority;
        var targets = new List<RouteTarget>();
        foreach (var (node, index) in map.Sequence("targets").Select((n, i) => (n, i)))
        {
            if (node is YamlScalarNode scalar)
            {
                targets.Add(new RouteTarget(scalar.Value ?? "", targets.Count, 1, map.Diagnostics.At(node)));
                continue;
            }

            if (YamlMap.From(node, map.Sub($"targets[{index}]"), map.Diagnostics) is not { } t)
            {
                continue;
            }

            var target = new RouteTarget(
                t.String("model", required: true) ?? "",
                t.Int("priority", 0, 1000) ?? 0,
                t.Double("weight", 0, 1_000_000) ?? 1,
                t.Location);
            map.Diagnostics.Remember(target, "model", t.LocationOf("model"));
            targets.Add(target);
            t.RejectUnknownKeys();
        }

        if (targets.Count == 0)
        {
            map.Diagnostics.Error(map.LocationOf("targets"), $"{map.Path} '{name}': needs at least one target; add targets: [ {{ model: NAME }} ]");
        }

        var fallbackOn = map.IntList("fallback_on", 100, 599) ?? VirtualModelConfig.DefaultFallbackOn;
        var ttft = map.Int("ttft_timeout_ms", 1, 600_000);
        var factor = map.Double("latency_factor", 1, 100) ?? 1.5;
        map.RejectUnknownKeys();
        return new VirtualModelConfig(name, strategy, targets, fallbackOn, ttft, factor, map.Location);
    }

    private static CachingConfig ReadCaching(YamlMap map)
    {
        var config = new CachingConfig(
            map.Enum("type", CacheTypes, required: true) ?? CacheType.Exact,
            map.Double("similarity_threshold", 0, 1) ?? 0.9,
            map.Enum("namespace_per", CacheNamespaces) ?? CacheNamespace.Agent,
            map.Duration("ttl") ?? TimeSpan.FromHours(1),
            map.String("embedding_model"),
            map.Int("max_entries", 1, 10_000_000) ?? 10_000,
            map.Bool("cache_tool_calls") ?? false,
            map.Location);
        map.Diagnostics.Remember(config, "embedding_model", map.LocationOf("embedding_model"));
        map.RejectUnknownKeys();
        return config;
    }

    private static GuardrailsConfig ReadGuardrails(YamlMap? map)
    {
        if (map is null)
        {
            return GuardrailsConfig.None;
        }

        var config = new GuardrailsConfig(
            ReadGuardrailList(map, "llm_input"),
            ReadGuardrailList(map, "llm_output"),
            ReadGuardrailList(map, "mcp_pre_tool"),
            ReadGuardrailList(map, "mcp_post_tool"));
        map.RejectUnknownKeys();
        return config;
    }

    private static List<GuardrailRef> ReadGuardrailList(YamlMap map, string hook)
    {
        var result = new List<GuardrailRef>();
        foreach (var (node, index) in map.Sequence(hook).Select((n, i) => (n, i)))
        {
            var location = map.Diagnostics.At(node);
            if (node is YamlScalarNode { Value: { } name })
            {
                CheckGuardrailType(map, location, hook, name);
                result.Add(new GuardrailRef(name, name, GuardrailAction.Block, null, [], null, 1000, false, location));
                continue;
            }

            if (YamlMap.From(node, map.Sub($"{hook}[{index}]"), map.Diagnostics) is not { } g)
            {
                continue;
            }

            var type = g.String("type", required: true) ?? "";
            CheckGuardrailType(map, location, hook, type);
            result.Add(new GuardrailRef(
                g.String("name") ?? type,
                type,
                g.Enum("action", GuardrailActions) ?? GuardrailAction.Block,
                g.Double("threshold", 0, 1),
                g.StringList("patterns"),
                ReadUri(g, "url"),
                g.Int("timeout_ms", 1, 60_000) ?? 1000,
                (g.String("on_error") ?? "block") switch
                {
                    "allow" => true,
                    "block" => false,
                    var other => ReportOnError(g, other),
                },
                location));
            g.RejectUnknownKeys();
        }

        return result;

        static bool ReportOnError(YamlMap g, string value)
        {
            g.Diagnostics.Error(g.LocationOf("on_error"), $"{g.Sub("on_error")}: '{value}' is not one of allow, block");
            return false;
        }
    }

    private static void CheckGuardrailType(YamlMap map, SourceLocation location, string hook, string type)
    {
        if (!GuardrailsConfig.BuiltInTypes.Contains(type))
        {
            map.Diagnostics.Error(location, $"{map.Sub(hook)}: unknown guardrail '{type}' (known: {string.Join(", ", GuardrailsConfig.BuiltInTypes)})");
        }
    }

    private static BudgetRule ReadBudget(YamlMap map)
    {
        var appliesPer = map.String("applies_per", required: true) ?? "agent";
        CheckAppliesPer(map, appliesPer);
        var limitText = map.String("limit", required: true);
        decimal amount = 0;
        var window = BudgetWindow.Day;
        if (limitText is not null)
        {
            var match = BudgetLimit().Match(limitText.Replace(" ", "", StringComparison.Ordinal));
            if (match.Success && Windows.TryGetValue(match.Groups[2].Value, out window))
            {
                amount = decimal.Parse(match.Groups[1].Value.Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
            }
            else
            {
                map.Diagnostics.Error(map.LocationOf("limit"), $"{map.Sub("limit")}: '{limitText}' is not a budget; write USD/WINDOW such as 50/day (windows: minute, hour, day, week, month)");
            }
        }

        var alertAt = map.IntList("alert_at", 1, 1000) ?? [];
        var mode = map.Enum("mode", PolicyModes) ?? PolicyMode.Enforce;
        var name = map.String("name");
        map.RejectUnknownKeys();
        var rule = new BudgetRule(appliesPer, amount, window, alertAt, mode, map.Location);
        return name is null ? rule : rule with { Name = name };
    }

    private static RateLimitRule ReadRateLimit(YamlMap map)
    {
        var appliesPer = map.String("applies_per", required: true) ?? "agent";
        if (appliesPer != "server")
        {
            CheckAppliesPer(map, appliesPer);
        }

        var rule = new RateLimitRule(
            appliesPer,
            map.Long("requests_per_minute", 1),
            map.Long("requests_per_hour", 1),
            map.Long("requests_per_day", 1),
            map.Long("tokens_per_minute", 1),
            map.Long("tokens_per_hour", 1),
            map.Long("tokens_per_day", 1),
            map.Location)
        {
            ToolCallsPerMinute = map.Long("tool_calls_per_minute", 1),
        };
        var modelLimits = rule is not { RequestsPerMinute: null, RequestsPerHour: null, RequestsPerDay: null, TokensPerMinute: null, TokensPerHour: null, TokensPerDay: null };
        if (!modelLimits && rule.ToolCallsPerMinute is null)
        {
            map.Diagnostics.Error(map.Location, $"{map.Path}: a rate limit needs at least one of requests_per_minute/hour/day, tokens_per_minute/hour/day or tool_calls_per_minute");
        }

        if (appliesPer == "server" && modelLimits)
        {
            map.Diagnostics.Error(map.LocationOf("applies_per"), $"{map.Path}: applies_per: server counts MCP tool calls only, so its requests/tokens limits could never apply; use tool_calls_per_minute");
        }

        map.RejectUnknownKeys();
        return rule;
    }

    private static void CheckAppliesPer(YamlMap map, string appliesPer)
    {
        if (appliesPer is not ("agent" or "team" or "model" or "virtual_model")
            && !(appliesPer.StartsWith("metadata.", StringComparison.Ordinal) && appliesPer.Length > "metadata.".Length))
        {
            map.Diagnostics.Error(map.LocationOf("applies_per"), $"{map.Sub("applies_per")}: '{appliesPer}' is not one of agent, team, model, virtual_model, metadata.KEY");
        }
    }

    private static McpServerConfig ReadMcpServer(YamlMap map)
    {
        var name = map.String("name", required: true) ?? "";
        var transport = map.Enum("transport", Transports) ?? (map.Has("command") ? McpTransport.Stdio : McpTransport.Http);
        var url = ReadUri(map, "url");
        var command = map.StringList("command");
        var env = map.ValueMap("env");
        var auth = McpAuthConfig.None;
        if (map.Map("auth") is { } a)
        {
            auth = new McpAuthConfig(a.Enum("type", AuthTypes) ?? McpAuthType.Bearer, a.Secret("token"), a.String("header"));
            a.RejectUnknownKeys();
            if (auth.Type is McpAuthType.Bearer or McpAuthType.Header && !a.Has("token"))
            {
                map.Diagnostics.Error(a.Location, $"{a.Path}: {auth.Type.ToString().ToLowerInvariant()} auth needs token: \"${{env:NAME}}\"");
            }

            if (auth.Type == McpAuthType.Header && string.IsNullOrEmpty(auth.HeaderName))
            {
                map.Diagnostics.Error(a.Location, $"{a.Path}: header auth needs header: NAME");
            }
        }

        if (transport == McpTransport.Http && url is null && map.Has("url") is false)
        {
            map.Diagnostics.Error(map.Location, $"mcp_server '{name}': transport http needs url");
        }

        if (transport == McpTransport.Stdio && command.Count == 0)
        {
            map.Diagnostics.Error(map.Location, $"mcp_server '{name}': transport stdio needs command: [program, args...]");
        }

        if (auth.Type == McpAuthType.PerUser && transport == McpTransport.Stdio)
        {
            map.Diagnostics.Error(map.LocationOf("auth"), $"mcp_server '{name}': per_user auth sends each user's token over HTTP; a stdio server has one process for everyone, so give it http (url:) or its own credential in env");
        }

        if (auth.Type == McpAuthType.PerUser && auth.Token is not null)
        {
            map.Diagnostics.Error(map.LocationOf("auth"), $"mcp_server '{name}': per_user auth takes each user's token from the token vault (PUT /api/mcp/tokens/{name}/USER); remove token");
        }

        var trusted = map.Bool("trusted") ?? false;
        var readOnly = map.StringList("read_only_tools");
        var timeout = map.Duration("timeout");
        if (timeout is { } t && (t < TimeSpan.FromMilliseconds(100) || t > TimeSpan.FromHours(1)))
        {
            map.Diagnostics.Error(map.LocationOf("timeout"), $"{map.Sub("timeout")}: use between 100ms and 1h (e.g. 30s)");
        }

        map.RejectUnknownKeys();
        return new McpServerConfig(name, transport, url, command, env, auth, map.Location)
        {
            Trusted = trusted,
            ReadOnlyTools = readOnly,
            Timeout = timeout ?? TimeSpan.FromSeconds(30),
        };
    }

    private static AgentConfig ReadAgent(YamlMap map)
    {
        var diagnostics = map.Diagnostics;
        var name = map.String("name", required: true) ?? "";
        if (name.Length > 0 && !FleetValidator.IsValidName(name))
        {
            diagnostics.Error(map.LocationOf("name"), $"{map.Sub("name")}: '{name}' is not a valid agent name; use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)");
        }

        var owner = map.String("owner", required: true) ?? "";
        var description = map.String("description");
        var model = map.String("model");
        VersionedRef? instructions = null;
        string? inlineInstructions = null;
        if (map.String("instructions") is { } i)
        {
            if (IsInstructionsFile(i))
            {
                instructions = VersionedRef.Parse(i);
                CheckPinned(map, map.LocationOf("instructions"), "instructions", instructions);
            }
            else
            {
                // The text itself: versioned with the fleet file.
                inlineInstructions = i;
            }
        }

        var skills = new List<VersionedRef>();
        foreach (var (text, location) in map.StringItems("skills"))
        {
            var skill = VersionedRef.Parse(text);
            CheckPinned(map, location, "skills", skill);
            skills.Add(skill);
        }

        var grants = new List<McpGrant>();
        foreach (var (node, index) in map.Sequence("mcp_servers").Select((n, i) => (n, i)))
        {
            if (node is YamlScalarNode { Value: { } server })
            {
                grants.Add(new McpGrant(server, [], diagnostics.At(node)));
            }
            else if (YamlMap.From(node, map.Sub($"mcp_servers[{index}]"), diagnostics) is { } g)
            {
                grants.Add(ReadGrant(g));
            }
        }

        var subagentItems = map.StringItems("subagents");
        var harness = HarnessConfig.Default;
        if (map.Map("harness") is { } h)
        {
            harness = new HarnessConfig(
                h.Int("max_steps", 1, 100_000) ?? harness.MaxSteps,
                h.Long("max_tokens_per_run", 1) ?? harness.MaxTokensPerRun,
                h.Int("timeout_seconds", 1, 7 * 86_400) ?? harness.TimeoutSeconds)
            {
                MaxCostPerRun = h.Decimal("max_cost_per_run", 0.000001m, 1_000_000m),
                StuckAfter = h.Int("stuck_after", 2, 1_000) ?? harness.StuckAfter,
                EndOnDenial = (h.Enum("on_denied", DenialPolicies) ?? false),
            };
            h.RejectUnknownKeys();
        }

        TriggerConfig? trigger = null;
        if (map.Map("trigger") is { } t)
        {
            trigger = new TriggerConfig(t.String("schedule"), t.String("timezone"))
            {
                Input = t.String("input"),
                Concurrency = t.Int("concurrency", 1, 100) ?? 1,
                Missed = t.Enum("missed", MissedPolicies) ?? MissedBeats.Skip,
                Webhook = t.Bool("webhook") ?? false,
                WebhookSecret = t.Secret("webhook_secret"),
            };
            CheckTrigger(t, trigger);
            t.RejectUnknownKeys();
        }

        var ownItems = new List<(string Value, SourceLocation Location)>();
        foreach (var item in map.StringItems("owns"))
        {
            if (ownItems.FindIndex(o => o.Value == item.Value) is var first and >= 0)
            {
                diagnostics.Error(item.Location, $"{map.Sub("owns")}: '{item.Value}' is listed twice (first at {ownItems[first].Location}); remove one");
                continue;
            }

            ownItems.Add(item);
        }

        var metadata = map.StringMap("metadata");
        var role = map.Enum("role", Roles) ?? AgentRole.Maker;
        // checker: NAME, or checker: { agent: NAME, revisions: N }.
        string? checker;
        var revisions = 1;
        if (map.Node("checker") is YamlMappingNode)
        {
            var checkerMap = map.Map("checker")!;
            checker = checkerMap.String("agent", required: true);
            revisions = checkerMap.Int("revisions", 0, 10) ?? 1;
            checkerMap.RejectUnknownKeys();
        }
        else
        {
            checker = map.String("checker");
        }

        map.RejectUnknownKeys(AgentMisplacedKeys);
        var agent = new AgentConfig(
            name, owner, description, model, instructions, skills, grants, subagentItems.Select(s => s.Value).ToList(), harness, trigger,
            ownItems.Select(o => o.Value).ToList(), metadata, map.Location)
        {
            Role = role,
            Checker = checker,
            CheckerRevisions = revisions,
            InlineInstructions = inlineInstructions,
        };
        diagnostics.Remember(agent, "role", map.LocationOf("role"));
        diagnostics.Remember(agent, "checker", map.LocationOf("checker"));
        diagnostics.Remember(agent, "model", map.LocationOf("model"));
        for (var n = 0; n < subagentItems.Count; n++)
        {
            diagnostics.Remember(agent, $"subagents[{n}]", subagentItems[n].Location);
        }

        for (var n = 0; n < ownItems.Count; n++)
        {
            diagnostics.Remember(agent, $"owns[{n}]", ownItems[n].Location);
        }

        return agent;
    }

    /// <summary><c>{ server, tools: [name | { tool, args }], deny: [...], access: read | write }</c>.</summary>
    private static McpGrant ReadGrant(YamlMap g)
    {
        var tools = new List<string>();
        var rules = new List<McpArgRule>();
        foreach (var (item, index) in g.Sequence("tools").Select((n, i) => (n, i)))
        {
            if (item is YamlScalarNode { Value: { } tool })
            {
                tools.Add(tool);
            }
            else if (YamlMap.From(item, g.Sub($"tools[{index}]"), g.Diagnostics) is { } rule)
            {
                var name = rule.String("tool", required: true) ?? "";
                var args = rule.StringMap("args");
                if (args.Count == 0)
                {
                    g.Diagnostics.Error(rule.Location, $"{rule.Path}: a tool rule narrows by args: {{ NAME: GLOB }}; for the whole tool write just '{name}'");
                }

                tools.Add(name);
                rules.Add(new McpArgRule(name, args, rule.Location));
                rule.RejectUnknownKeys();
            }
        }

        var grant = new McpGrant(g.String("server", required: true) ?? "", tools, g.LocationOf("server"))
        {
            Deny = g.StringList("deny"),
            Access = g.Enum("access", Accesses) ?? McpAccess.Write,
            ArgRules = rules,
        };
        g.RejectUnknownKeys();
        return grant;
    }

    private static ArtifactConfig ReadArtifact(YamlMap map)
    {
        var writes = new List<ArtifactWrite>();
        foreach (var w in Items(map, "writes"))
        {
            var tools = w.StringList("tools");
            if (tools.Count == 0)
            {
                w.Diagnostics.Error(w.Location, $"{w.Path}: name the tools that write the artifact: tools: [NAME, ...]");
            }

            writes.Add(new ArtifactWrite(w.String("server", required: true) ?? "", tools, w.StringMap("args"), w.Location));
            w.RejectUnknownKeys();
        }

        var name = map.String("name", required: true) ?? "";
        if (writes.Count == 0)
        {
            map.Diagnostics.Error(map.Location, $"artifact '{name}': say how a write is recognised: writes: [{{ server, tools: [...], args: {{ path: GLOB }} }}]");
        }

        map.RejectUnknownKeys();
        return new ArtifactConfig(name, writes, map.Location);
    }

    private static McpGatewayConfig ReadMcpSettings(YamlMap map)
    {
        var defaults = McpGatewayConfig.Default;
        var approval = map.Duration("approval_ttl") ?? defaults.ApprovalTtl;
        var idempotency = map.Duration("idempotency_ttl") ?? defaults.IdempotencyTtl;
        foreach (var (key, value) in new[] { ("approval_ttl", approval), ("idempotency_ttl", idempotency) })
        {
            if (value < TimeSpan.FromMinutes(1) || value > TimeSpan.FromDays(90))
            {
                map.Diagnostics.Error(map.LocationOf(key), $"{map.Sub(key)}: use between 1m and 90d (e.g. 24h)");
            }
        }

        var settings = new McpGatewayConfig(approval, idempotency, map.Bool("record_arguments") ?? false);
        map.RejectUnknownKeys();
        return settings;
    }

    /// <summary>A file reference (<c>./triage.md@v6</c>, <c>triage.md@v6</c>) rather than the instructions' text itself.</summary>
    private static bool IsInstructionsFile(string value) =>
        !value.Contains('\n', StringComparison.Ordinal) && !value.Contains(' ', StringComparison.Ordinal)
        && (value.StartsWith("./", StringComparison.Ordinal) || value.StartsWith("../", StringComparison.Ordinal)
            || System.Text.RegularExpressions.Regex.IsMatch(value, @"^[\w./-]+\.(md|txt|markdown)(@\S*)?$"));

    private static void CheckPinned(YamlMap map, SourceLocation location, string key, VersionedRef reference)
    {
        if (string.IsNullOrEmpty(reference.Version))
        {
            map.Diagnostics.Error(location, $"{map.Sub(key)}: '{reference.Name}' is not pinned; write {reference.Name}@VERSION (e.g. {reference.Name}@v1) so that an edit cannot reach this loop unreviewed");
        }
    }

    private static void CheckTrigger(YamlMap map, TriggerConfig trigger)
    {
        if (trigger.Schedule is { } schedule)
        {
            try
            {
                CronExpression.Parse(schedule);
            }
            catch (CronFormatException e)
            {
                map.Diagnostics.Error(map.LocationOf("schedule"), $"{map.Sub("schedule")}: '{schedule}' is not a five-field cron expression (minute hour day-of-month month day-of-week, e.g. \"0 6 * * 1-5\"): {e.Message}");
            }
        }

        if (trigger.Webhook && trigger.WebhookSecret is null)
        {
            map.Diagnostics.Error(map.LocationOf("webhook"), $"{map.Sub("webhook")}: a webhook trigger needs webhook_secret: \"${{env:NAME}}\", the HMAC-SHA256 key its callers sign with");
        }

        if (trigger.TimeZone is { } zone && !TimeZoneInfo.TryFindSystemTimeZoneById(zone, out _))
        {
            map.Diagnostics.Error(map.LocationOf("timezone"), $"{map.Sub("timezone")}: '{zone}' is not a known time zone; use an IANA name such as Europe/Berlin or UTC");
        }
    }

    /// <summary>Maps each item of a list of mappings, naming it by index in messages (<c>gateway.models[2]</c>).</summary>
    private static IEnumerable<YamlMap> Items(YamlMap map, string key) =>
        map.Sequence(key).Select((node, index) => YamlMap.From(node, map.Sub($"{key}[{index}]"), map.Diagnostics)).OfType<YamlMap>();

    private static YamlMap? MapOrHint(YamlNode node, string key, string hintForList, FleetDiagnostics diagnostics)
    {
        if (node is YamlSequenceNode)
        {
            diagnostics.Error(node, $"{key}: expected a mapping, found {hintForList}");
            return null;
        }

        return YamlMap.From(node, key, diagnostics);
    }

    private static IEnumerable<(YamlNode Node, int Index)> ListOrHint(YamlNode node, string key, string hintForMap, FleetDiagnostics diagnostics)
    {
        if (node is YamlSequenceNode sequence)
        {
            return sequence.Children.Where(c => !YamlMap.IsNull(c)).Select((c, i) => (c, i));
        }

        diagnostics.Error(node, $"{key}: expected a list (- item per entry), found {YamlMap.Describe(node)}; {hintForMap}");
        return [];
    }

    private static Uri? ReadUri(YamlMap map, string key)
    {
        var text = map.String(key);
        if (text is null)
        {
            return null;
        }

        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            return uri;
        }

        map.Diagnostics.Error(map.LocationOf(key), $"{map.Sub(key)}: '{text}' is not an absolute http(s) URL");
        return null;
    }

    private static string StripMarks(string message) => MarkSuffix().Replace(message, "");

    [GeneratedRegex(@"^\$?([0-9][0-9_]*(?:\.[0-9]+)?)/(minute|hour|day|week|month)$")]
    private static partial Regex BudgetLimit();

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex MarkSuffix();
}
