using Flotilla.Governance.Calls;
using Flotilla.Governance.Errors;

namespace Flotilla.Governance.RateLimiting;

/// <summary>The rate-limit policy on the governed path: count the call before it goes out, correct its tokens after.</summary>
public static class RateLimitStep
{
    /// <summary>Counts one request and the estimated tokens against every matching rule, or refuses with 429 and Retry-After.</summary>
    public static void Acquire(GovernedCall call)
    {
        var limits = call.Snapshot.RateLimits;
        var decision = limits.TryAcquire(call.Subject, call.EstimatedTokens);
        if (!decision.IsAllowed && call.RefineEstimate())
        {
            // Refused on the cheap upper bound (a refusal counts nothing): decide again on the tokenizer's count.
            decision = limits.TryAcquire(call.Subject, call.EstimatedTokens);
        }

        call.RateLimit = decision;
        if (!decision.IsAllowed)
        {
            throw new GatewayException(429, "rate_limit_error", ErrorCodes.RateLimited, decision.Reason!)
            {
                RetryAfterSeconds = (int)Math.Ceiling(decision.RetryAfter.TotalSeconds),
            };
        }
    }

    /// <summary>Replaces the token estimate with what the call used.</summary>
    public static void Settle(GovernedCall call)
    {
        if (call.RateLimit is { IsAllowed: true } decision)
        {
            call.Snapshot.RateLimits.Reconcile(decision, call.ActualTokens);
        }
    }
}
