using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Pipeline;

namespace Flotilla.Gateway.RateLimiting;

/// <summary>The rate-limit policy on the governed path: count the call before it goes out, correct its tokens after.</summary>
internal static class RateLimitStep
{
    /// <summary>Counts one request and the estimated tokens against every matching rule, or refuses with 429 and Retry-After.</summary>
    public static void Acquire(ModelCall call)
    {
        var decision = call.Runtime.RateLimits.TryAcquire(call.Subject, call.EstimatedTokens);
        call.RateLimit = decision;
        if (!decision.IsAllowed)
        {
            throw new GatewayException(429, "rate_limit_error", ErrorCodes.RateLimited, decision.Reason!)
            {
                RetryAfterSeconds = (int)Math.Ceiling(decision.RetryAfter.TotalSeconds),
            };
        }
    }

    /// <summary>Replaces the token estimate with what the call used (nothing for a cache hit).</summary>
    public static void Settle(ModelCall call)
    {
        if (call.RateLimit is { IsAllowed: true } decision)
        {
            call.Runtime.RateLimits.Reconcile(decision, call.EstimatedTokens, call.CacheState == "hit" ? 0 : call.Usage.Total);
        }
    }
}
