using System.Text.Json.Serialization;
using Flotilla.Storage.Traces;

namespace Flotilla.Server.Admin;

internal sealed record IssueKeyRequest(string? Agent);

internal sealed record IssuedKey(string Id, string Agent, string Key, string Prefix, DateTimeOffset CreatedAt, string Note);

internal sealed record KeyInfo(string Id, string Agent, string Prefix, DateTimeOffset CreatedAt);

internal sealed record AgentInfo(
    string Name, string Owner, string? Description, string? Model, string? Instructions, IReadOnlyList<string> Skills,
    IReadOnlyList<string> McpServers, IReadOnlyList<string> Subagents, string? Schedule, IReadOnlyList<string> Owns, int Keys);

internal sealed record TargetInfo(string Model, string Provider, int ConsecutiveFailures, DateTimeOffset? CoolingUntil, double? MsPerToken);

internal sealed record ListResponse<T>(IReadOnlyList<T> Data);

internal sealed record BudgetInfo(string AppliesPer, string Key, decimal LimitUsd, string Window, decimal SpentUsd, decimal ReservedUsd,
    decimal UsedPercent, DateTimeOffset WindowStart, DateTimeOffset ResetsAt, string Mode, string Rule);

internal sealed record CostResponse(string By, DateTimeOffset Since, DateTimeOffset? Until, IReadOnlyList<Flotilla.Storage.Usage.UsageRow> Data, CostTotals Total);

internal sealed record CostTotals(long Calls, long Errors, long Fallbacks, long CacheHits, long InputTokens, long OutputTokens, decimal CostUsd);

internal sealed record AdminError(AdminErrorBody Error);

internal sealed record AdminErrorBody(string Message, string Type, string Code);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false)]
[JsonSerializable(typeof(IssueKeyRequest))]
[JsonSerializable(typeof(IssuedKey))]
[JsonSerializable(typeof(ListResponse<KeyInfo>))]
[JsonSerializable(typeof(ListResponse<AgentInfo>))]
[JsonSerializable(typeof(ListResponse<TraceRecord>))]
[JsonSerializable(typeof(ListResponse<TargetInfo>))]
[JsonSerializable(typeof(TraceRecord))]
[JsonSerializable(typeof(CostResponse))]
[JsonSerializable(typeof(ListResponse<BudgetInfo>))]
[JsonSerializable(typeof(ListResponse<Flotilla.Storage.Alerts.AlertRecord>))]
[JsonSerializable(typeof(AdminError))]
[JsonSerializable(typeof(FleetInfo))]
[JsonSerializable(typeof(RevisionInfo))]
[JsonSerializable(typeof(ListResponse<RevisionInfo>))]
[JsonSerializable(typeof(FleetApplyResponse))]
[JsonSerializable(typeof(FleetRefused))]
[JsonSerializable(typeof(Flotilla.Storage.Mcp.ApprovalRecord))]
[JsonSerializable(typeof(ListResponse<Flotilla.Storage.Mcp.ApprovalRecord>))]
[JsonSerializable(typeof(DecisionRequest))]
[JsonSerializable(typeof(TokenRequest))]
[JsonSerializable(typeof(ListResponse<TokenInfo>))]
[JsonSerializable(typeof(Flotilla.Mcp.Grants.ArtifactReport))]
[JsonSerializable(typeof(ListResponse<Flotilla.Mcp.Upstreams.McpServerStatus>))]
[JsonSerializable(typeof(Flotilla.Storage.Runs.RunRecord))]
[JsonSerializable(typeof(ListResponse<Flotilla.Storage.Runs.RunRecord>))]
[JsonSerializable(typeof(RunDetail))]
[JsonSerializable(typeof(AgentDetail))]
[JsonSerializable(typeof(StartRunRequest))]
internal sealed partial class AdminJson : JsonSerializerContext
{
    /// <summary>Like <see cref="Default"/>, with readable text (no \u0027 for an apostrophe).</summary>
    public static AdminJson Relaxed { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
