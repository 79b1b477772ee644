using System.Net.Sockets;
using Flotilla.Fleet;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Traces;
using Flotilla.Storage.Traces;
using Polly;
using Polly.Retry;

namespace Flotilla.Gateway.Routing;

/// <summary>The outcome of a call across all its attempts.</summary>
internal sealed class DispatchResult(UpstreamReply reply, RoutedModel? target, List<TraceAttempt> attempts)
{
    /// <summary>The successful reply, or the last failure.</summary>
    public UpstreamReply Reply { get; } = reply;

    /// <summary>The model that answered (or failed last).</summary>
    public RoutedModel? Target { get; } = target;

    public List<TraceAttempt> Attempts { get; } = attempts;

    /// <summary>Attempts actually sent (cooldown skips excluded).</summary>
    public int AttemptCount => Attempts.Count(a => a.Outcome != "skipped_cooldown");

    /// <summary>The answer came from a target other than the first of the plan (which failed or was cooling down).</summary>
    public bool FellBack => Target is not null && Attempts.Any(a => a.Target != Target.Name);
}

/// <summary>
/// Runs one call through its route: each target in plan order, bounded retries of the same target (exponential backoff
/// with jitter, honouring Retry-After up to <see cref="RetryConfig.MaxDelayMs"/>), fallback to the next target on the
/// route's statuses, connection failures, the time-to-first-token cut-off and invalid answers, and cooldown of targets
/// that keep failing. The number of attempts is bounded by targets × (1 + retries); there is no unbounded loop.
/// </summary>
internal sealed class CallDispatcher
{
    private readonly ITargetHealth _health;
    private readonly VirtualModelRouter _router;
    private readonly RoutingConfig _routing;
    private readonly TimeProvider _time;
    private readonly ResiliencePipeline<UpstreamReply> _retry;

    public CallDispatcher(ITargetHealth health, RoutingConfig routing)
    {
        _health = health;
        _router = new VirtualModelRouter(health);
        _routing = routing;
        _time = health.Time;
        var retries = routing.Retries;
        if (retries.Attempts == 0)
        {
            _retry = ResiliencePipeline<UpstreamReply>.Empty;
            return;
        }

        var maxDelay = TimeSpan.FromMilliseconds(Math.Max(1, retries.MaxDelayMs));
        var retryStatuses = retries.OnStatusCodes.ToHashSet();
        _retry = new ResiliencePipelineBuilder<UpstreamReply> { TimeProvider = _time }
            .AddRetry(new RetryStrategyOptions<UpstreamReply>
            {
                MaxRetryAttempts = retries.Attempts,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(Math.Max(1, retries.BaseDelayMs)),
                MaxDelay = maxDelay,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result is { } reply && ShouldRetry(reply, retryStatuses, maxDelay)),
                // Retry-After wins over the computed backoff when the upstream gives one.
                DelayGenerator = args => ValueTask.FromResult(args.Outcome.Result?.RetryAfter),
            })
            .Build();
    }

    public RoutingConfig Routing => _routing;

    private static bool ShouldRetry(UpstreamReply reply, HashSet<int> statuses, TimeSpan maxDelay) =>
        reply.Outcome switch
        {
            AttemptOutcome.Status => statuses.Contains(reply.Status) && (reply.RetryAfter is null || reply.RetryAfter <= maxDelay),
            AttemptOutcome.ConnectError => true,
            _ => false,
        };

    private static bool FallsBack(UpstreamReply reply, Route route) =>
        reply.Outcome switch
        {
            AttemptOutcome.Status => route.FallbackOn.Contains(reply.Status),
            AttemptOutcome.Ok => false,
            _ => true,
        };

    private static bool IsTargetFailure(UpstreamReply reply) =>
        reply.Outcome switch
        {
            AttemptOutcome.Status => reply.Status is 429 or >= 500,
            AttemptOutcome.Ok or AttemptOutcome.SkippedCooldown => false,
            _ => true,
        };

    public async Task<DispatchResult> DispatchAsync(CallKind kind, ChatRequest request, Route route, CancellationToken cancellationToken)
    {
        var plan = _router.Plan(route);
        var attempts = new List<TraceAttempt>(plan.Length);
        var anyAvailable = false;
        foreach (var member in plan)
        {
            anyAvailable |= !_health.IsCoolingDown(member.Model.Name);
        }

        UpstreamReply? last = null;
        RoutedModel? lastTarget = null;
        foreach (var member in plan)
        {
            var target = member.Model;
            // When every target is cooling down, try them all anyway rather than fail without trying.
            if (anyAvailable && plan.Length > 1 && _health.IsCoolingDown(target.Name))
            {
                attempts.Add(new TraceAttempt(target.Name, target.Provider.Config.Name, 0, "skipped_cooldown", 0, "cooling down after repeated failures"));
                continue;
            }

            var state = new AttemptState(this, new UpstreamCall(kind, request, target.Config), target, route, attempts);
            var reply = await _retry.ExecuteAsync(static (s, ct) => s.Dispatcher.AttemptAsync(s, ct), state, cancellationToken);
            if (reply.IsSuccess)
            {
                return new DispatchResult(reply, target, attempts);
            }

            last = reply;
            lastTarget = target;
            if (!FallsBack(reply, route))
            {
                break;
            }
        }

        return new DispatchResult(last ?? UpstreamReply.Failed(AttemptOutcome.SkippedCooldown, 0, "no target could be tried"), lastTarget, attempts);
    }

    private sealed record AttemptState(CallDispatcher Dispatcher, UpstreamCall Call, RoutedModel Target, Route Route, List<TraceAttempt> Attempts);

    private async ValueTask<UpstreamReply> AttemptAsync(AttemptState state, CancellationToken cancellationToken)
    {
        var start = _time.GetTimestamp();
        CancellationTokenSource? ttftTimer = null;
        CancellationTokenSource? linked = null;
        var token = cancellationToken;
        if (state.Route.TtftTimeoutMs is { } ttftMs)
        {
            ttftTimer = new CancellationTokenSource(TimeSpan.FromMilliseconds(ttftMs), _time);
            linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, ttftTimer.Token);
            token = linked.Token;
        }

        var provider = state.Target.Provider.Config.Name;
        // The attempt's span is current while the request goes out, so the upstream sees it as the parent (traceparent).
        using var span = CallTracing.StartAttempt(state.Call.Kind == CallKind.Chat ? "chat" : "embeddings",
            state.Target.Name, state.Target.Config.UpstreamModel, provider);
        UpstreamReply reply;
        try
        {
            reply = state.Call.Request.NativeOnly is { } nativeOnly && state.Target.Provider.Config.Type != ProviderType.Anthropic
                ? UpstreamReply.Failed(AttemptOutcome.Status, 400, $"provider '{provider}' cannot take this request: {nativeOnly}",
                    Errors.ErrorWriter.ToJson($"{nativeOnly}; '{state.Target.Name}' is not an Anthropic model, so the request cannot be sent to it.",
                        "invalid_request_error", ErrorCodes.Unsupported))
                : await state.Target.Provider.SendAsync(state.Call, token);
            if (reply.Stream is { } stream)
            {
                // Nothing reaches the caller until the first chunk is here, so a stall before it can still fall back.
                bool first;
                try
                {
                    first = await stream.ReadAsync(token);
                }
                catch (StreamBrokenException e)
                {
                    await reply.DisposeAsync();
                    reply = UpstreamReply.Failed(AttemptOutcome.BrokenStream, 200, $"provider '{provider}': {e.Message}");
                    first = true;
                }
                catch
                {
                    await reply.DisposeAsync();
                    throw;
                }

                if (!first)
                {
                    await reply.DisposeAsync();
                    reply = UpstreamReply.Failed(AttemptOutcome.InvalidResponse, 200, $"provider '{provider}' sent an empty stream");
                }
            }
        }
        catch (OperationCanceledException) when (ttftTimer?.IsCancellationRequested == true && !cancellationToken.IsCancellationRequested)
        {
            reply = UpstreamReply.Failed(AttemptOutcome.TtftTimeout, 0, $"provider '{provider}' sent nothing within the {state.Route.TtftTimeoutMs} ms time-to-first-token cut-off");
        }
        catch (HttpRequestException e)
        {
            reply = UpstreamReply.Failed(AttemptOutcome.ConnectError, 0, $"cannot reach provider '{provider}': {Describe(e)}");
        }
        catch (IOException e)
        {
            reply = UpstreamReply.Failed(AttemptOutcome.ConnectError, 0, $"connection to provider '{provider}' failed: {e.Message}");
        }
        finally
        {
            linked?.Dispose();
            ttftTimer?.Dispose();
        }

        var elapsed = _time.GetElapsedTime(start).TotalMilliseconds;
        if (span is not null)
        {
            span.SetTag("flotilla.outcome", OutcomeName(reply.Outcome));
            span.SetTag("http.response.status_code", reply.Status);
            if (!reply.IsSuccess)
            {
                span.SetStatus(System.Diagnostics.ActivityStatusCode.Error, OutcomeName(reply.Outcome));
            }
        }

        // Upstreams echo keys in error messages; attempts are stored in traces, so they are scrubbed like the call's error.
        state.Attempts.Add(new TraceAttempt(state.Target.Name, provider, reply.Status, OutcomeName(reply.Outcome), Math.Round(elapsed, 3),
            reply.IsSuccess ? null : SecretScrubber.Scrub(reply.Error)));
        if (reply.IsSuccess)
        {
            _health.RecordSuccess(state.Target.Name);
        }
        else if (IsTargetFailure(reply))
        {
            _health.RecordFailure(state.Target.Name, _routing.Cooldown,
                reply.RetryAfter is { } wait && wait > TimeSpan.FromMilliseconds(_routing.Retries.MaxDelayMs) ? wait : null);
        }

        return reply;
    }

    private static string Describe(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.ConnectionError when e.InnerException is SocketException s => s.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : s.Message,
        HttpRequestError.NameResolutionError => "host name not found",
        HttpRequestError.ResponseEnded => "the connection closed before a response",
        HttpRequestError.InvalidResponse => "invalid HTTP response",
        _ => e.Message,
    };

    public static string OutcomeName(AttemptOutcome outcome) => outcome switch
    {
        AttemptOutcome.Ok => "ok",
        AttemptOutcome.Status => "status",
        AttemptOutcome.ConnectError => "connect_error",
        AttemptOutcome.TtftTimeout => "ttft_timeout",
        AttemptOutcome.Timeout => "timeout",
        AttemptOutcome.InvalidResponse => "invalid_response",
        AttemptOutcome.BrokenStream => "broken_stream",
        AttemptOutcome.ConfigError => "config_error",
        AttemptOutcome.SkippedCooldown => "skipped_cooldown",
        _ => "error",
    };

    /// <summary>The error a caller sees when no target answered.</summary>
    public static GatewayException ToCallerError(DispatchResult result, Route route)
    {
        var reply = result.Reply;
        var sent = result.Attempts.Where(a => a.Outcome != "skipped_cooldown").ToList();
        var summary = string.Join("; ", result.Attempts.Select(a => $"{a.Target}: {a.Error ?? a.Outcome}"));
        var what = route.IsVirtual ? $"virtual model '{route.Name}'" : $"model '{route.Name}'";
        if (sent.Count > 0 && sent.All(a => a.Status == 429))
        {
            return new GatewayException(429, "rate_limit_error", ErrorCodes.AllTargetsFailed,
                $"Every target of {what} is rate limited ({summary}). Retry later.")
            {
                RetryAfterSeconds = reply.RetryAfter is { } wait ? (int)Math.Ceiling(wait.TotalSeconds) : null,
            };
        }

        var timedOut = sent.Count > 0 && sent.All(a => a.Outcome is "ttft_timeout" or "timeout");
        return new GatewayException(timedOut ? 504 : 502, "api_error", timedOut ? ErrorCodes.UpstreamTimeout : ErrorCodes.AllTargetsFailed,
            $"No target of {what} answered after {sent.Count} attempt(s): {summary}. The trace has the details.");
    }
}
