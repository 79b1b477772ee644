using Flotilla.Fleet;

namespace Flotilla.Governance.Identity;

/// <summary>Who is calling: the registered agent behind the presented key (or, in process, the agent named by the caller).</summary>
public sealed record CallerIdentity(AgentConfig Agent, string KeyId);
