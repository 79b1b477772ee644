namespace Flotilla.Gateway.Protocol;

/// <summary>Token counts reported by a provider for one call.</summary>
public readonly record struct TokenUsage(long InputTokens, long OutputTokens)
{
    public long Total => InputTokens + OutputTokens;
}
