using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using Flotilla.Governance.Budgets;
using Flotilla.Governance.Fleet;
using Flotilla.Governance.Http;
using Flotilla.Storage.Alerts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Governance.Alerts;

/// <summary>
/// Takes alerts off the request path: stores each one, then posts it to the fleet's alert webhook when one is
/// configured, with retries (1 s, 2 s, 4 s, 8 s) and a 5 s timeout per try. A slow or failing webhook never slows a call.
/// </summary>
public sealed partial class AlertDispatcher(IAlertStore store, LiveFleet fleet, TimeProvider time, ILogger<AlertDispatcher> logger) : BackgroundService
{
    private static readonly HttpClient Webhook = OutboundHttp.CreateWebhookClient(TimeSpan.FromSeconds(5));
    private readonly Channel<AlertRecord> _channel = Channel.CreateBounded<AlertRecord>(new BoundedChannelOptions(10_000)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.DropOldest,
    });

    private long _published;
    private long _settled;

    /// <summary>
    /// True when every alert published so far has been stored and its delivery has ended (delivered, failed or no webhook):
    /// nothing more will be posted until the next alert. A signal for tests and for shutdown, not a hot-path read.
    /// </summary>
    internal bool IsSettled => Interlocked.Read(ref _settled) == Interlocked.Read(ref _published);

    private void Enqueue(AlertRecord alert)
    {
        Interlocked.Increment(ref _published);
        if (!_channel.Writer.TryWrite(alert))
        {
            Interlocked.Increment(ref _settled);
        }
    }

    public void Publish(BudgetAlert alert)
    {
        var rule = alert.Rule;
        var reached = rule.LimitUsd > 0 && alert.SpentUsd * 100m >= rule.LimitUsd * alert.Threshold;
        var message = $"{rule.AppliesPer} '{alert.Key}' has spent ${alert.SpentUsd:0.####} of ${rule.LimitUsd:0.##} per {BudgetWindows.Name(rule.Window)} " +
            (reached ? $"({alert.Threshold}% threshold" : $"and a call was refused: the budget cannot cover it ({alert.Threshold}% threshold") +
            $"; window {alert.WindowStart:yyyy-MM-ddTHH:mm}Z–{alert.WindowEnd:yyyy-MM-ddTHH:mm}Z).";
        Enqueue(new AlertRecord
        {
            // Deterministic: the same threshold in the same window is one alert, even across restarts.
            Id = StableId($"{rule.Name}|{rule.AppliesPer}|{alert.Key}|{alert.WindowStart.ToUnixTimeSeconds()}|{alert.Threshold}"),
            At = alert.At,
            Kind = "budget_threshold",
            Message = message,
            AppliesPer = rule.AppliesPer,
            Key = alert.Key,
            Threshold = alert.Threshold,
            SpentUsd = decimal.Round(alert.SpentUsd, 6),
            LimitUsd = rule.LimitUsd,
            WindowStart = alert.WindowStart,
            WindowEnd = alert.WindowEnd,
        });
    }

    public void PublishWouldBlock(string message, string agent)
    {
        Enqueue(new AlertRecord
        {
            Id = "alr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            At = time.GetUtcNow(),
            Kind = "budget_would_block",
            Message = $"(audit) a call by agent '{agent}' would have been refused: {message}",
            Key = agent,
        });
    }

    /// <summary>An alert about Flotilla itself (e.g. <c>trace_store_failing</c>), stored and posted like budget alerts.</summary>
    public void PublishSystem(string kind, string message)
    {
        Enqueue(new AlertRecord
        {
            Id = "alr_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            At = time.GetUtcNow(),
            Kind = kind,
            Message = message,
        });
    }

    internal static string StableId(string text) =>
        "alr_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 10));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var alert in _channel.Reader.ReadAllAsync(stoppingToken))
            {
                var webhook = fleet.Fleet.Gateway.Alerts?.Webhook;
                var stored = alert with { Delivery = webhook is null ? "none" : "pending" };
                try
                {
                    await store.AddAsync(stored, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogStoreFailed(logger, alert.Id, e.Message);
                }

                if (webhook is not null)
                {
                    _ = DeliverAsync(webhook, stored, stoppingToken);
                }
                else
                {
                    Interlocked.Increment(ref _settled);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task DeliverAsync(Uri webhook, AlertRecord alert, CancellationToken cancellationToken)
    {
        try
        {
            await TryDeliverAsync(webhook, alert, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Recording the delivery state failed (the store shares a full disk, say); the post itself is done or given up.
            LogStoreFailed(logger, alert.Id, e.Message);
        }
        finally
        {
            Interlocked.Increment(ref _settled);
        }
    }

    private async Task TryDeliverAsync(Uri webhook, AlertRecord alert, CancellationToken cancellationToken)
    {
        var payload = new WebhookPayload(alert.Id, alert.Kind, alert.At, alert.Message, alert.AppliesPer, alert.Key, alert.Threshold,
            alert.SpentUsd, alert.LimitUsd, alert.WindowStart, alert.WindowEnd);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                if (attempt > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(Math.Pow(2, attempt - 1)), time, cancellationToken);
                }

                // Only the status matters: the answer's body is never read.
                using var request = new HttpRequestMessage(HttpMethod.Post, webhook) { Content = JsonContent.Create(payload, AlertJson.Default.WebhookPayload) };
                using var response = await Webhook.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    await store.SetDeliveryAsync(alert.Id, "delivered", CancellationToken.None);
                    return;
                }

                LogDeliveryRetry(logger, alert.Id, ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), attempt + 1);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                LogDeliveryRetry(logger, alert.Id, e.Message, attempt + 1);
            }
        }

        await store.SetDeliveryAsync(alert.Id, "failed", CancellationToken.None);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Storing alert {Id} failed: {Reason}")]
    private static partial void LogStoreFailed(ILogger logger, string id, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Alert webhook delivery of {Id} failed ({Reason}), attempt {Attempt}")]
    private static partial void LogDeliveryRetry(ILogger logger, string id, string reason, int attempt);
}

public sealed record WebhookPayload(string Id, string Kind, DateTimeOffset At, string Message, string? AppliesPer, string? Key, int? Threshold,
    decimal? SpentUsd, decimal? LimitUsd, DateTimeOffset? WindowStart, DateTimeOffset? WindowEnd);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(WebhookPayload))]
public sealed partial class AlertJson : JsonSerializerContext;
