using System.Buffers;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Providers.Anthropic;
using Flotilla.Storage.Responses;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Gateway.Endpoints.Responses;

/// <summary>
/// The conversations <c>POST /v1/responses</c> served, per agent, for <c>gateway.responses.ttl</c>: each response keeps its
/// turn (input items and answer, as Chat Completions messages) and the id it continued, so a loop can send only what is new
/// with <c>previous_response_id</c>. Expired turns are pruned hourly.
/// </summary>
internal sealed partial class ResponseHistory(IResponseStore store, FleetState fleet, TimeProvider time, ILogger<ResponseHistory> logger) : BackgroundService
{
    /// <summary>The stored turns that <paramref name="id"/> ends, oldest first; a 404 in OpenAI's shape when there are none for this agent.</summary>
    public async Task<IReadOnlyList<string>> ConversationAsync(string agent, string id, CancellationToken cancellationToken)
    {
        // Another agent's id is answered exactly like an unknown one: whether it exists is not this caller's business.
        return await store.GetConversationAsync(agent, id, time.GetUtcNow(), cancellationToken)
            ?? throw new GatewayException(404, "invalid_request_error", "previous_response_not_found",
                $"Previous response with id '{Flotilla.Fleet.DisplayText.Safe(id, 80)}' not found: it is unknown to this agent or older than gateway.responses.ttl.",
                "previous_response_id");
    }

    /// <summary>Keeps a served turn; false (logged) when it could not be kept, so the response can say <c>store: false</c>.</summary>
    public async Task<bool> SaveAsync(string agent, string id, ResponsesTurn turn, ResponsesWriter answer, CancellationToken cancellationToken)
    {
        var buffer = new ArrayBufferWriter<byte>(turn.TurnMessages.Length + 512);
        using (var writer = new Utf8JsonWriter(buffer, AnthropicTranslator.WriterOptions))
        {
            writer.WriteStartArray();
            using (var document = JsonDocument.Parse(turn.TurnMessages))
            {
                foreach (var message in document.RootElement.EnumerateArray())
                {
                    message.WriteTo(writer);
                }
            }

            answer.WriteAssistantMessage(writer);
            writer.WriteEndArray();
        }

        var now = time.GetUtcNow();
        try
        {
            await store.PutAsync(new StoredResponse
            {
                Id = id,
                Agent = agent,
                PreviousId = turn.PreviousResponseId,
                Messages = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan),
                CreatedAt = now,
                ExpiresAt = now + fleet.Current.Snapshot.Config.Gateway.Responses.Ttl,
            }, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogSaveFailed(logger, id, e);
            return false;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await store.PruneAsync(time.GetUtcNow(), stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogPruneFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Response {Id} could not be stored; it cannot be continued with previous_response_id")]
    private static partial void LogSaveFailed(ILogger logger, string id, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Pruning expired responses failed; will try again in an hour")]
    private static partial void LogPruneFailed(ILogger logger, Exception exception);
}
