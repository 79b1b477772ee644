using System.Text.RegularExpressions;

namespace Flotilla.Fleet.Loading;

/// <summary>
/// Checks that need the whole fleet: unique names, references between sections, artifact ownership.
/// Checks of a single value (types, ranges, pins, cron) happen while loading, where the YAML node is at hand.
/// </summary>
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

        foreach (var group in gateway.Budgets.GroupBy(b => b.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            foreach (var rule in group.Skip(1))
            {
                diagnostics.Error(rule.Location, $"budget '{group.Key}' is declared twice (first at line {group.First().Location.Line}); budgets keep their spend by name across applies, " +
                    "so give each a distinct name: (the default is APPLIES_PER-WINDOW)");
            }
        }

        var providers = gateway.Providers.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var models = gateway.Models.GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var virtualModels = gateway.Routing.VirtualModels.Select(v => v.Name).ToHashSet(StringComparer.Ordinal);

        foreach (var model in gateway.Models)
        {
            // An empty name was already reported as a missing required key.
            if (model.Provider.Length > 0 && !providers.Contains(model.Provider))
            {
                diagnostics.Error(diagnostics.Where(model, "provider", model.Location),
                    $"model '{model.Name}': provider '{model.Provider}' is not declared under gateway.providers{Known(providers)}; declare it or fix the name");
            }
            else if (model.Script.Count > 0 && gateway.Providers.FirstOrDefault(p => p.Name == model.Provider) is { Type: not ProviderType.Simulated } real)
            {
                diagnostics.Error(diagnostics.Where(model, "script", model.Location),
                    $"model '{model.Name}': only a model of a simulated provider follows a script; '{real.Name}' is {real.Type.ToString().ToLowerInvariant()}");
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
                if (target.Model.Length == 0)
                {
                    continue;
                }

                if (!models.TryGetValue(target.Model, out var model))
                {
                    diagnostics.Error(diagnostics.Where(target, "model", target.Location),
                        $"virtual model '{vm.Name}': target '{target.Model}' is not declared under gateway.models{Known(models.Keys)}; declare it or fix the name");
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
                $"gateway.routing.virtual_model: '{defaultModel}' is neither a virtual model nor a model{Known(virtualModels.Concat(models.Keys))}; declare it or fix the name");
        }
        else if (gateway.Routing.DefaultVirtualModel is { } defaultName && models.TryGetValue(defaultName, out var defaultDeclared) && defaultDeclared.Kind == ModelKind.Embedding)
        {
            diagnostics.Error(gateway.Routing.DefaultLocation ?? new SourceLocation(diagnostics.File, 1, 1),
                $"gateway.routing.virtual_model: '{defaultName}' is an embedding model; the default must be a chat model or a virtual model");
        }

        if (gateway.Caching is { EmbeddingModel: { } embedding } caching)
        {
            if (!models.TryGetValue(embedding, out var model))
            {
                diagnostics.Error(diagnostics.Where(caching, "embedding_model", caching.Location),
                    $"gateway.caching.embedding_model: '{embedding}' is not declared under gateway.models; declare it with type: embedding");
            }
            else if (model.Kind != ModelKind.Embedding)
            {
                diagnostics.Error(diagnostics.Where(caching, "embedding_model", caching.Location),
                    $"gateway.caching.embedding_model: '{embedding}' is a chat model; name a model declared with type: embedding");
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
            if (agent.Model is { } model && !IsRoutable(model))
            {
                diagnostics.Error(diagnostics.Where(agent, "model", agent.Location),
                    $"{label}: model '{model}' is neither a virtual model nor a model{Known(virtualModels.Concat(models.Keys))}; declare it under gateway or fix the name");
            }
            else if (agent.Model is { } agentModel && models.TryGetValue(agentModel, out var declared) && declared.Kind == ModelKind.Embedding)
            {
                diagnostics.Error(diagnostics.Where(agent, "model", agent.Location),
                    $"{label}: model '{agentModel}' is an embedding model; a loop needs a chat model or a virtual model");
            }

            foreach (var grant in agent.McpServers)
            {
                if (grant.Server.Length > 0 && !servers.Contains(grant.Server))
                {
                    diagnostics.Error(grant.Location, $"{label}: mcp server '{grant.Server}' is not declared{Known(servers)}; add an mcp_server document or fix the name");
                }

                CheckGrant(grant, label, diagnostics);
                if (agent.Role == AgentRole.Checker && grant.Access != McpAccess.Read)
                {
                    diagnostics.Error(grant.Location, $"{label}: role checker may hold no write grant, and '{grant.Server}' is granted for write; add access: read to it " +
                        "(a checker that can write is a second maker)");
                }
            }

            if (agent.Checker is { } checkerName)
            {
                var location = diagnostics.Where(agent, "checker", agent.Location);
                var checker = fleet.Agents.FirstOrDefault(a => a.Name == checkerName);
                if (checkerName == agent.Name)
                {
                    diagnostics.Error(location, $"{label}: cannot check itself; name another agent as checker");
                }
                else if (checker is null)
                {
                    diagnostics.Error(location, $"{label}: checker '{checkerName}' is not a declared agent{Known(agents)}; add an agent document or fix the name");
                }
                else if (checker.McpServers.FirstOrDefault(g => g.Access != McpAccess.Read) is { } write)
                {
                    diagnostics.Error(location, $"{label}: checker '{checkerName}' holds a write grant on '{write.Server}' ({write.Location}); a checker may hold only access: read grants");
                }
            }

            for (var i = 0; i < agent.Subagents.Count; i++)
            {
                var sub = agent.Subagents[i];
                var location = diagnostics.Where(agent, $"subagents[{i}]", agent.Location);
                if (sub == agent.Name)
                {
                    diagnostics.Error(location, $"{label}: cannot be its own subagent; remove '{sub}' from subagents");
                }
                else if (!agents.Contains(sub))
                {
                    diagnostics.Error(location, $"{label}: subagent '{sub}' is not a declared agent{Known(agents)}; add an agent document or fix the name");
                }
            }

            for (var i = 0; i < agent.Owns.Count; i++)
            {
                var artifact = agent.Owns[i];
                if (owners.TryGetValue(artifact, out var other))
                {
                    diagnostics.Error(diagnostics.Where(agent, $"owns[{i}]", agent.Location),
                        $"{label}: artifact '{artifact}' is already owned by agent '{other.Name}' ({other.Location}); an artifact has one owner, remove it from one of them");
                }
                else
                {
                    owners[artifact] = agent;
                }
            }
        }

        CheckNames(gateway.Artifacts.Select(a => (a.Name, a.Location)), "artifact", diagnostics);
        foreach (var write in gateway.Artifacts.SelectMany(a => a.Writes.Select(w => (Artifact: a, Write: w))))
        {
            if (write.Write.Server.Length > 0 && !servers.Contains(write.Write.Server))
            {
                diagnostics.Error(write.Write.Location, $"artifact '{write.Artifact.Name}': mcp server '{write.Write.Server}' is not declared{Known(servers)}; add an mcp_server document or fix the name");
            }
        }
    }

    /// <summary>Rules of a grant that can never match are mistakes: a tool both granted and denied, a narrowing of a tool the grant refuses.</summary>
    private static void CheckGrant(McpGrant grant, string label, FleetDiagnostics diagnostics)
    {
        foreach (var tool in grant.Tools.Distinct(StringComparer.Ordinal))
        {
            if (Glob.IsMatchAny(grant.Deny, tool))
            {
                diagnostics.Error(grant.Location, $"{label}: grant on '{grant.Server}' lists tool '{tool}' and denies it too, so it can never be called; remove it from one of tools and deny");
            }
        }

        if (grant.Tools.Count == 0 && grant.Deny.Any(d => d is "*" or "**"))
        {
            diagnostics.Error(grant.Location, $"{label}: grant on '{grant.Server}' denies every tool; remove the grant instead");
        }

        foreach (var rule in grant.ArgRules.Where(r => grant.ArgRules.Count(o => o.Tool == r.Tool) > 1).GroupBy(r => r.Tool).Select(g => g.Last()))
        {
            diagnostics.Error(rule.Location, $"{label}: grant on '{grant.Server}' narrows tool '{rule.Tool}' twice; merge the args into one rule");
        }
    }

    /// <summary>Agent names: letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit.</summary>
    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

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
                diagnostics.Error(location, $"{kind} '{name}' is declared twice (first at {first}); rename or remove one");
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
