namespace Flotilla.Guardrails.PromptInjection;

/// <summary>The independent signs of a prompt injection. Each carries a weight; the score combines the ones that fired.</summary>
[Flags]
public enum InjectionSignals
{
    None = 0,

    /// <summary>"ignore / disregard / forget (all) previous instructions", "new instructions:". Weight 0.6.</summary>
    InstructionOverride = 1 << 0,

    /// <summary>"reveal / print your system prompt". Weight 0.5.</summary>
    PromptExtraction = 1 << 1,

    /// <summary>"you are now a …", "from now on you …", "pretend to be", "act as … without restrictions". Weight 0.45.</summary>
    RoleReassignment = 1 << 2,

    /// <summary>"DAN", "do anything now", "developer mode enabled", "jailbroken". Weight 0.55.</summary>
    Jailbreak = 1 << 3,

    /// <summary>Chat-template tokens of another turn: <c>&lt;|im_start|&gt;</c>, <c>[INST]</c>, <c>&lt;&lt;SYS&gt;&gt;</c>, <c>&lt;|start_header_id|&gt;</c>. Weight 0.55.</summary>
    ChatTemplateToken = 1 << 4,

    /// <summary>A fake turn or system marker at the start of a line: <c>system:</c>, <c>assistant:</c>, <c>### System</c>, <c>&lt;system&gt;</c>, <c>&lt;IMPORTANT&gt;</c>. Weight 0.3.</summary>
    RoleMarker = 1 << 5,

    /// <summary>Text that speaks to the model: "if you are an AI", "note to the assistant", "AI agents reading this". Weight 0.4.</summary>
    AddressedToModel = 1 << 6,

    /// <summary>"do not tell the user", "without informing the user". Weight 0.45.</summary>
    Concealment = 1 << 7,

    /// <summary>"call the X tool", "run the following command", "execute this script". Weight 0.3.</summary>
    ToolInstruction = 1 << 8,

    /// <summary>"curl … | sh", "rm -rf /", "delete all", "drop table", "merge the PR", "force push", "approve the payment". Weight 0.4.</summary>
    DangerousAction = 1 << 9,

    /// <summary>"send / upload / post the secrets|tokens|keys … to http…", "exfiltrate". Weight 0.5.</summary>
    Exfiltration = 1 << 10,

    /// <summary>Names credential files: ~/.ssh, id_rsa, .aws/credentials, /etc/passwd, .env. Weight 0.35.</summary>
    SensitiveFile = 1 << 11,

    /// <summary>Invisible Unicode tag characters (U+E0000..U+E007F) that spell hidden ASCII. Weight 0.6.</summary>
    HiddenTagCharacters = 1 << 12,

    /// <summary>Zero-width characters (U+200B..U+200F, U+2060..U+2064, U+FEFF) inside text. Weight 0.25.</summary>
    ZeroWidthCharacters = 1 << 13,

    /// <summary>Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069). Weight 0.3.</summary>
    BidiControl = 1 << 14,

    /// <summary>A base64, hex, percent- or HTML-entity-encoded run that decodes to text carrying another signal. Weight 0.6.</summary>
    EncodedPayload = 1 << 15,
}
