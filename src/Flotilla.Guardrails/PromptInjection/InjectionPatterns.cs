using System.Text.RegularExpressions;

namespace Flotilla.Guardrails.PromptInjection;

// The phrase patterns, one per signal. Each starts with an alternation of literal words, which the regex source
// generator turns into one vectorized multi-string search; text without those words costs a single pass.
public static partial class PromptInjectionDetector
{
    [GeneratedRegex("""
        \b(?:ignore|disregard|forget|skip|override|bypass|abandon|neglect|discard)\s+
        (?:
          (?:(?:the|of|these|those|any|my)\s+){0,2}
          (?:all|your|previous|prior|above|earlier|preceding|original|initial|system|safety|developer|existing|foregoing|former)\s+
          (?:(?:the|of|your|previous|prior|above|earlier|preceding|original|initial|system|safety|developer|existing|given|other)\s+){0,3}
          (?:instructions?|prompts?|rules|directions|directives|guidelines|guardrails|constraints|restrictions|programming|context|orders|commands)\b
        | (?:everything|anything|all)\s+(?:above|before|prior|previously|earlier|you(?:'ve|\s+have|\s+were)\s+(?:been\s+)?(?:told|given|said))
        )
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex InstructionOverride();

    [GeneratedRegex("""
        \b(?:new|updated|real|actual|revised|secret|hidden|true|overriding)\s+(?:system\s+)?instructions?\s*:
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex NewInstructions();

    [GeneratedRegex("""
        \b(?:system|admin|administrator|developer|root)\s+override\b
        | \binstead\s*,?\s+(?:follow|obey|do)\s+(?:these|the\s+following|my|only)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex OverrideCommand();

    [GeneratedRegex("""
        \b(?:reveal|print|show|output|repeat|display|leak|dump|recite|tell\s+me|give\s+me|write\s+out|share)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?your\s+
          (?:(?:full|entire|original|initial|hidden|secret|exact|complete|internal)\s+){0,2}
          (?:system\s+(?:prompt|message|instructions)|initial\s+(?:prompt|instructions)|instructions|prompt|rules|guidelines|configuration)\b
        | \brepeat\s+(?:the\s+)?(?:words|text|everything|all)\s+above\b
        | \bwhat\s+(?:is|was|are|were)\s+your\s+(?:system\s+prompt|initial\s+instructions|original\s+instructions)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex PromptExtraction();

    [GeneratedRegex("""
        \byou\s+are\s+now\s+(?:a|an|the|my|in|no\s+longer|free|unrestricted|unfiltered|uncensored|acting)\b
        | \bfrom\s+now\s+on\s*,?\s+(?:you|your|act|respond|answer|reply|always|never|ignore)\b
        | \bpretend\s+(?:to\s+be|you\s+are|that\s+you)\b
        | \b(?:act|behave|respond|roleplay)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:a|an)\s+[\w\s-]{0,40}?(?:without|with\s+no)\s+(?:any\s+)?(?:restrictions|limits|limitations|filters|rules|guidelines|ethics)\b
        | \byour\s+new\s+(?:role|persona|identity|task|goal|objective|purpose)\s+is\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex RoleReassignment();

    [GeneratedRegex("""
        \bdo\s+anything\s+now\b
        | \bdeveloper\s+mode\s+(?:enabled|activated|on)\b
        | \bjailbroken\b
        | \bjailbreak\s+mode\b
        | \bno\s+(?:ethical|moral|content|safety)\s+(?:guidelines|restrictions|filters|limits|policies)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex Jailbreak();

    // "DAN" is matched case-sensitively: Dan is a name.
    [GeneratedRegex("""
        \bDAN(?:\s+mode\b|(?<=\b(?:[Yy]ou\s+are|[Aa]ct\s+as|[Yy]ou're|[Bb]ecome)\s+(?:now\s+)?DAN)\b)
        """, RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex JailbreakPersona();

    [GeneratedRegex("""
        <\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>
        | \[/?INST\]
        | <</?SYS>>
        | <(?:start|end)_of_turn>
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex ChatTemplateToken();

    // A role label that starts a line (after indentation, quoting or list marks): "system:", "Assistant message:".
    [GeneratedRegex("""
        (?:system|assistant|developer)(?<=^[ \t>*_\-]*(?:system|assistant|developer))(?:\s+(?:message|prompt|note))?\s*:
        """, Options | RegexOptions.IgnorePatternWhitespace | RegexOptions.Multiline)]
    private static partial Regex RoleMarker();

    // A markdown heading that opens a fake section: "### System", "## Instructions:".
    [GeneratedRegex("""
        \#{1,4}(?<=^[ \t]*\#{1,4})[ \t]*(?:system|instructions?|assistant|response)[ \t]*:?[ \t]*$
        """, Options | RegexOptions.IgnorePatternWhitespace | RegexOptions.Multiline)]
    private static partial Regex RoleHeading();

    [GeneratedRegex("""
        </?(?:system|important|instructions?|admin|system[_-]prompt)>
        | \[(?:system|admin)(?:\s+message)?\]
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex RoleTag();

    [GeneratedRegex("""
        \bif\s+you\s+are\s+(?:an?\s+)?(?:ai|llm|language\s+model|assistant|chatbot|agent|bot|gpt|claude|copilot)\b
        | \b(?:note|message|instructions?|attention|important|reminder)\s*:?\s*(?:to|for)\s+(?:the\s+|any\s+|all\s+)?(?:ai|llm|assistant|agent|model|bot|gpt|claude|copilot)s?\b
        | \b(?:ai|llm)\s+(?:agents?|assistants?|models?|systems?|bots?)\s+(?:reading|processing|parsing|summari[sz]ing|reviewing|that\s+reads?)\s+this\b
        | \bdear\s+(?:ai|assistant|agent|llm|model|gpt|claude|copilot)\b
        | \battention\s*[,:]?\s+(?:ai|llm|assistant|agent|bot)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex AddressedToModel();

    [GeneratedRegex("""
        \b(?:do\s+not|don't|dont|never)\s+(?:tell|inform|mention|reveal|notify|alert|show|disclose|let)\s+(?:this\s+|it\s+|anything\s+)?(?:to\s+)?(?:the\s+)?(?:user|human|operator|developer|owner|anyone)\b
        | \bwithout\s+(?:telling|informing|notifying|alerting|asking|letting)\s+(?:the\s+)?(?:user|human|operator|owner)\b
        | \bkeep\s+(?:this|it)\s+(?:secret|hidden|confidential)\s+from\b
        | \buser\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|find\s+out|be\s+told)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex Concealment();

    [GeneratedRegex("""
        \b(?:call|use|invoke|run|execute|trigger)\s+(?:the\s+)?[\w.-]{2,40}\s+(?:tool|function|mcp\s+tool)\b
        | \b(?:run|execute)\s+(?:the\s+following|this|these)\s+(?:commands?|scripts?|code|shell)\b
        | \buse\s+(?:the\s+)?(?:bash|shell|terminal)\s+(?:tool\s+)?to\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex ToolInstruction();

    [GeneratedRegex("""
        \b(?:curl|wget)\s[^\n|]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|k|da)?sh\b
        | \brm\s+-(?:rf|fr|r\s+-f)\s+(?:/|~|\*|\$HOME|\.\s)
        | \bdelete\s+(?:all|every)\b
        | \bdrop\s+(?:table|database|schema)\b
        | \bmerge\s+(?:the|this|that|my|all)\s+(?:PRs?|pull\s+requests?|MRs?|merge\s+requests?)\b
        | \b(?:force[- ]push|push\s+(?:-f|--force))\b
        | \bapprove\s+(?:the|this|all|every)\s+(?:PRs?|pull\s+requests?|payments?|transfers?|requests?)\b
        | \bchmod\s+(?:-R\s+)?777\b
        | \btransfer\s+(?:\$|€|£|\d|(?:the\s+)?funds|money)
        | \bdisable\s+(?:the\s+)?(?:2fa|mfa|branch\s+protection|audit\s+logs?|logging|guardrails?)\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex DangerousAction();

    [GeneratedRegex("""
        \bexfiltrat\w*
        | \b(?:send|post|upload|forward|email|e-mail|transmit|leak|share|paste|copy|append|include)\b[^.\n]{0,80}?
          \b(?:secrets?|credentials?|passwords?|tokens?|api[\s_-]?keys?|private\s+keys?|ssh\s+keys?|\.env|env(?:ironment)?\s+var(?:iable)?s|cookies|session\s+ids?|keys?)\b[^.\n]{0,80}?
          \b(?:to|at|into)\s+(?:https?://|ftp://|[\w.+-]+@[\w-]+\.|this\s+(?:url|address|endpoint|server|webhook|email)|the\s+following\s+(?:url|address|endpoint|server|webhook|email)|(?:my|our|an?)\s+(?:external\s+)?(?:server|endpoint|webhook))
        | !\[[^\]\n]{0,100}\]\(https?://[^)\s]{0,200}[?&][\w-]{1,30}=(?:\{|\$|<|%7B)
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex Exfiltration();

    [GeneratedRegex("""
        (?:~/\.ssh|id_(?:rsa|ed25519|ecdsa|dsa)(?<=\bid_\w+)|\.aws/credentials|/etc/(?:passwd|shadow)|\.(?:netrc|npmrc|pypirc|git-credentials)
          |credentials\.json|\.kube/config|\.env(?<![\w./-]\.env)(?![.\w]))\b
        """, Options | RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex SensitiveFile();
}
