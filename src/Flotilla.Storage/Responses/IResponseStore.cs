namespace Flotilla.Storage.Responses;

/// <summary>
/// One response served by <c>POST /v1/responses</c>, kept so the agent can continue the conversation with
/// <c>previous_response_id</c>: the turn's messages (its input and the answer, as a Chat Completions message array) and a
/// link to the response it continued.
/// </summary>
public sealed record StoredResponse
{
    public required string Id { get; init; }
    public required string Agent { get; init; }
    public string? PreviousId { get; init; }

    /// <summary>JSON array of Chat Completions messages: this turn's input items, then the answer.</summary>
    public required string Messages { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
}

public interface IResponseStore
{
    Task PutAsync(StoredResponse response, CancellationToken cancellationToken);

    /// <summary>
    /// The messages of the conversation that ends with response <paramref name="id"/>, oldest turn first (one JSON array per
    /// turn); null when the id is unknown, expired, belongs to another agent, or a response it continued is gone.
    /// </summary>
    Task<IReadOnlyList<string>?> GetConversationAsync(string agent, string id, DateTimeOffset now, CancellationToken cancellationToken);

    Task<long> PruneAsync(DateTimeOffset now, CancellationToken cancellationToken);
}
