using System.Text.RegularExpressions;
using Cronos;

namespace Flotilla.Fleet.Loading;

/// <summary>Cross-reference checks that need the whole fleet: names, references, ownership, schedules.</summary>
internal static partial class FleetValidator
{
    public static void Validate(FleetConfig fleet, FleetDiagnostics diagnostics)
    {
        var gateway = fleet.Gateway;
        CheckNames(gateway.Providers.Select(p => (p.Name, p.Location)), "provider", diagnostics);
        CheckNames(gateway.Models.Select(m => (m.Name, m.Location)), "model", diagnostics);
        CheckNames(gateway.Routing.VirtualModels.Select(v => (v.Name, v.Location)), "virtual model", diagnostics);
        CheckNames(fleet.McpServers.Select(s => (s.Name, s.Location)), "mcp_server", diagnostics);
        CheckNames(fleet.Agents.Select(a => (a.Name, a.Location)), "agent", diagnostics);

        var providers = gateway.Providers.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var models = gateway.Models.GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var virtualModels = gateway.Routing.VirtualModels.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);

        foreach (var model in gateway.Models)
        {
            if (!providers.Contains(model.Provider))
            {
                diagnostics.Error(model.Location, $"model '{model.Name}': provider '{model.Provider}' is not declared under gateway.providers{Known(providers)}");
            }
        }

        foreach (var vm in gateway.Routing.VirtualModels)
        {
            if (models.ContainsKey(vm.Name))
            {
                diagnostics.Error(vm.Location, $"virtual model '{vm.Name}': a model has the same name; callers could not tell them apart");
            }

            foreach (var target in vm.Targets)
            {
                if (!models.TryGetValue(target.Model, out var model))
                {
                    diagnostics.Error(target.Location, $"virtual model '{vm.Name}': target '{target.Model}' is not declared under gateway.models{Known(models.Keys)}");
                }
                else if (model.Kind != ModelKind.Chat && gateway.Routing.VirtualModels.Any(v => v == vm && v.Targets.Any(t => models.TryGetValue(t.Model, out var m) && m.Kind == ModelKind.Chat)))
                {
                    diagnostics.Error(target.Location, $"virtual model '{vm.Name}': mixes chat and embedding models");
                }
            }

            if (vm.Strategy == RoutingStrategy.Weight && vm.Targets.Count > 0 && vm.Targets.All(t => t.Weight <= 0))
            {
                diagnostics.Error(vm.Location, $"virtual model '{vm.Name}': strategy weight needs at least one target with weight > 0");
            }
        }

        bool IsRoutable(string name) => models.ContainsKey(name) || virtualModels.Contains(name);

        if (gateway.Routing.DefaultVirtualModel is { } defaultModel && !IsRoutable(defaultModel))
        {
            diagnostics.Error(gateway.Routing.DefaultLocation ?? new SourceLocation(diagnostics.File, 1, 1),
                $"gateway.routing.virtual_model: '{defaultModel}' is neither a virtual model nor a model{Known(virtualModels.Concat(models.Keys))}");
        }

        if (gateway.Caching is { EmbeddingModel: { } embedding } caching)
        {
            if (!models.TryGetValue(embedding, out var model))
            {
                diagnostics.Error(caching.Location, $"gateway.caching.embedding_model: '{embedding}' is not declared under gateway.models");
            }
            else if (model.Kind != ModelKind.Embedding)
            {
                diagnostics.Error(caching.Location, $"gateway.caching.embedding_model: '{embedding}' is not an embedding model (type: embedding)");
            }
        }

        foreach (var guardrail in new[] { gateway.Guardrails.LlmInput, gateway.Guardrails.LlmOutput, gateway.Guardrails.McpPreTool, gateway.Guardrails.McpPostTool }.SelectMany(g => g))
        {
            if (guardrail.Type == "webhook" && guardrail.Url is null)
            {
                diagnostics.Error(guardrail.Location, $"guardrail '{guardrail.Name}': type webhook needs url");
            }

            if (guardrail.Type == "regex")
            {
                if (guardrail.Patterns.Count == 0)
                {
                    diagnostics.Error(guardrail.Location, $"guardrail '{guardrail.Name}': type regex needs patterns");
                }

                foreach (var pattern in guardrail.Patterns)
                {
                    try
                    {
                        _ = new Regex(pattern, RegexOptions.None, TimeSpan.FromSeconds(1));
                    }
                    catch (ArgumentException e)
                    {
                        diagnostics.Error(guardrail.Location, $"guardrail '{guardrail.Name}': pattern '{pattern}' is not a valid regular expression: {e.Message}");
                    }
                }
            }
        }

        var servers = fleet.McpServers.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var agents = fleet.Agents.Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var owners = new Dictionary<string, AgentConfig>(StringComparer.Ordinal);
        foreach (var agent in fleet.Agents)
        {
            var label = $"agent '{agent.Name}'";
            if (agent.Name.Length > 0 && !NamePattern().IsMatch(agent.Name))
            {
                diagnostics.Error(agent.Location, $"{label}: names use letters, digits, '.', '_' and '-' (at most 64)");
            }

            if (agent.Model is { } model && !IsRoutable(model))
            {
                diagnostics.Error(agent.Location, $"{label}: model '{model}' is neither a virtual model nor a model{Known(virtualModels.Concat(models.Keys))}");
            }

            foreach (var grant in agent.McpServers)
            {
                if (!servers.Contains(grant.Server))
                {
                    diagnostics.Error(grant.Location, $"{label}: mcp server '{grant.Server}' is not declared (add an mcp_server document){Known(servers)}");
                }
            }

            foreach (var sub in agent.Subagents)
            {
                if (sub == agent.Name)
                {
                    diagnostics.Error(agent.Location, $"{label}: cannot be its own subagent");
                }
                else if (!agents.Contains(sub))
                {
                    diagnostics.Error(agent.Location, $"{label}: subagent '{sub}' is not a declared agent{Known(agents)}");
                }
            }

            foreach (var artifact in agent.Owns)
            {
                if (owners.TryGetValue(artifact, out var other))
                {
                    diagnostics.Error(agent.Location, $"{label}: artifact '{artifact}' is already owned by agent '{other.Name}' ({other.Location}); an artifact has one owner");
                }
                else
                {
                    owners[artifact] = agent;
                }
            }

            foreach (var reference in agent.Skills.Append(agent.Instructions).OfType<VersionedRef>())
            {
                if (reference.Version is null)
                {
                    diagnostics.Error(agent.Location, $"{label}: '{reference}' is not pinned; write NAME@VERSION (e.g. {reference.Name}@v1)");
                }
            }

            if (agent.Trigger is { Schedule: { } schedule })
            {
                try
                {
                    CronExpression.Parse(schedule);
                }
                catch (CronFormatException e)
                {
                    diagnostics.Error(agent.Location, $"{label}: trigger.schedule '{schedule}' is not a cron expression (minute hour day-of-month month day-of-week): {e.Message}");
                }
            }

            if (agent.Trigger is { TimeZone: { } zone })
            {
                try
                {
                    TimeZoneInfo.FindSystemTimeZoneById(zone);
                }
                catch (TimeZoneNotFoundException)
                {
                    diagnostics.Error(agent.Location, $"{label}: trigger.timezone '{zone}' is not a known time zone (e.g. Europe/Berlin)");
                }
            }
        }
    }

    private static void CheckNames(IEnumerable<(string Name, SourceLocation Location)> items, string kind, FleetDiagnostics diagnostics)
    {
        var seen = new Dictionary<string, SourceLocation>(StringComparer.Ordinal);
        foreach (var (name, location) in items)
        {
            if (name.Length == 0)
            {
                continue;
            }

            if (seen.TryGetValue(name, out var first))
            {
                diagnostics.Error(location, $"{kind} '{name}' is declared twice (first at {first})");
            }
            else
            {
                seen[name] = location;
            }
        }
    }

    private static string Known(IEnumerable<string> names)
    {
        var list = names.Distinct().Order(StringComparer.Ordinal).ToList();
        return list.Count == 0 ? " (none declared)" : $" (declared: {string.Join(", ", list)})";
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex NamePattern();
}
