using System.Text.RegularExpressions;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails.Secrets;

/// <summary>
/// The credential formats. Kinds follow gitleaks' rule ids where one exists, so findings read the same as a gitleaks
/// report; the patterns are our own. Specific formats come first: when two rules find overlapping text, the one that
/// starts earlier (then the longer) is kept.
/// </summary>
internal static partial class SecretRules
{
    private const RegexOptions Options = RegexOptions.CultureInvariant | RegexOptions.ExplicitCapture;

    public static SecretRule[] All { get; } =
    [
        new("gcp-service-account-key", GcpServiceAccount(), "secret", AcceptValue),
        new("private-key", PrivateKey()),
        new("aws-access-key-id", AwsAccessKeyId()),
        new("aws-secret-access-key", AwsSecretAccessKey(), "secret", AcceptValue),
        new("github-token", GitHubToken()),
        new("gitlab-token", GitLabToken()),
        new("slack-token", SlackToken()),
        new("slack-webhook-url", SlackWebhook()),
        new("stripe-key", StripeKey()),
        new("anthropic-api-key", AnthropicKey()),
        new("openai-api-key", OpenAIKey()),
        new("google-api-key", GoogleApiKey()),
        new("jwt", Jwt()),
        new("npm-token", NpmToken()),
        new("pypi-token", PyPiToken()),
        new("twilio-api-key", TwilioKey()),
        new("sendgrid-api-key", SendGridKey()),
        new("huggingface-token", HuggingFaceToken()),
        new("azure-storage-key", AzureStorageKey(), "secret"),
        new("flotilla-agent-key", FlotillaAgentKey()),
        new("connection-string", UrlCredentials(), "secret", AcceptValue),
        new("connection-string", AdoPassword(), "secret", AcceptAdoPassword),
        new("basic-auth", BasicAuthHeader(), "secret", AcceptValue),
        new("bearer-token", BearerToken(), "secret", AcceptRandomValue),
        new("password-assignment", PasswordAssignment(), "secret", AcceptPassword),
        new("generic-secret-assignment", SecretAssignment(), "secret", AcceptRandomValue),
    ];

    // PEM private keys (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted, PGP): the whole block, or the header and body when the
    // END line has not arrived (a cut-off message or a stream).
    [GeneratedRegex(@"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,12000}?-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:-]{0,12000})", Options)]
    private static partial Regex PrivateKey();

    [GeneratedRegex(@"""private_key""\s*:\s*""(?<secret>-----BEGIN[^""]{20,12000})""", Options)]
    private static partial Regex GcpServiceAccount();

    [GeneratedRegex(@"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b", Options)]
    private static partial Regex AwsAccessKeyId();

    [GeneratedRegex(@"(?i:aws)[\w.-]{0,30}?(?i:secret|private)[\w.-]{0,30}?[""']?\s{0,5}(?:=>|:=|=|:)\s{0,5}[""']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", Options)]
    private static partial Regex AwsSecretAccessKey();

    [GeneratedRegex(@"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}\b|github_pat_[A-Za-z0-9_]{82,255})", Options)]
    private static partial Regex GitHubToken();

    [GeneratedRegex(@"\bgl(?:pat|dt|ptt|rt|soat|cbt|imt|ft|agent)-[A-Za-z0-9_-]{20,64}", Options)]
    private static partial Regex GitLabToken();

    [GeneratedRegex(@"\b(?:xox[abposr]-[0-9A-Za-z-]{10,250}|xapp-\d-[A-Z0-9]{6,}-\d{6,}-[a-z0-9]{32,})", Options)]
    private static partial Regex SlackToken();

    [GeneratedRegex(@"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{40,60}", Options)]
    private static partial Regex SlackWebhook();

    [GeneratedRegex(@"\b(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,99}\b", Options)]
    private static partial Regex StripeKey();

    [GeneratedRegex(@"\bsk-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_-]{32,255}", Options)]
    private static partial Regex AnthropicKey();

    [GeneratedRegex(@"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,255}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}\b|[A-Za-z0-9]{32,64}\b)", Options)]
    private static partial Regex OpenAIKey();

    [GeneratedRegex(@"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", Options)]
    private static partial Regex GoogleApiKey();

    [GeneratedRegex(@"\beyJ[A-Za-z0-9_-]{10,4096}\.eyJ[A-Za-z0-9_-]{10,8192}\.[A-Za-z0-9_-]{0,1024}", Options)]
    private static partial Regex Jwt();

    [GeneratedRegex(@"\bnpm_[A-Za-z0-9]{36}\b", Options)]
    private static partial Regex NpmToken();

    [GeneratedRegex(@"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}", Options)]
    private static partial Regex PyPiToken();

    [GeneratedRegex(@"\bSK[0-9a-fA-F]{32}\b", Options)]
    private static partial Regex TwilioKey();

    [GeneratedRegex(@"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", Options)]
    private static partial Regex SendGridKey();

    [GeneratedRegex(@"\bhf_[A-Za-z]{34}\b", Options)]
    private static partial Regex HuggingFaceToken();

    [GeneratedRegex(@"(?i:AccountKey)\s*=\s*(?<secret>[A-Za-z0-9+/]{86}==)", Options)]
    private static partial Regex AzureStorageKey();

    [GeneratedRegex(@"\bflt_[A-Za-z0-9_-]{20,128}", Options)]
    private static partial Regex FlotillaAgentKey();

    // scheme://user:password@host — databases, queues, mail, FTP, LDAP and HTTP basic auth in a URL.
    [GeneratedRegex(@"://(?<=\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|jdbc:[a-z]{2,12}|ftps?|sftp|smtps?|ldaps?|https?)://)[^\s:/@""'<>]{1,128}:(?<secret>[^\s@/""'<>]{1,256})@", Options)]
    private static partial Regex UrlCredentials();

    // ADO.NET / ODBC style: Server=…;User Id=…;Password=…;
    [GeneratedRegex(@"(?i:\b(?:password|pwd))\s*=\s*(?<secret>[^;""'\r\n]{1,128})", Options)]
    private static partial Regex AdoPassword();

    [GeneratedRegex(@"(?i:\bauthorization)[""']?\s*[:=]\s*[""']?(?i:basic)\s+(?<secret>[A-Za-z0-9+/]{8,1024}={0,2})", Options)]
    private static partial Regex BasicAuthHeader();

    [GeneratedRegex(@"(?i:\bbearer)\s+(?<secret>[A-Za-z0-9._~+/-]{20,2048}={0,2})", Options)]
    private static partial Regex BearerToken();

    [GeneratedRegex(@"(?i:(?:password|passwd|pwd)[a-z0-9_.-]{0,20})[""']?\s{0,5}(?:=>|:=|=|:)\s{0,5}(?<quote>[""'`]?)(?<secret>[^\s""'`,;]{6,128})", RegexOptions.CultureInvariant)]
    private static partial Regex PasswordAssignment();

    [GeneratedRegex(@"(?i:(?:secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|signing[_-]?key|encryption[_-]?key)(?<suffix>[a-z0-9_.-]{0,20}))[""']?\s{0,5}(?:=>|:=|=|:)\s{0,5}[""'`]?(?<secret>[A-Za-z0-9_\-+/=.~]{16,256})", Options)]
    private static partial Regex SecretAssignment();

    private static bool AcceptValue(string text, Match match, Group secret) =>
        !TokenShape.IsPlaceholder(secret.ValueSpan) && !IsPlaceholderWord(secret.ValueSpan);

    private static bool AcceptRandomValue(string text, Match match, Group secret)
    {
        if (match.Groups["suffix"] is { Success: true, Length: > 0 } suffix && NamesNoSecret(suffix.ValueSpan))
        {
            return false;
        }

        var value = secret.ValueSpan.TrimEnd('.');
        if (value.Length < 16 || TokenShape.IsPlaceholder(value) || value.Contains("://", StringComparison.Ordinal))
        {
            return false;
        }

        var (upper, lower, digit) = TokenShape.Classes(value);
        var classes = (upper ? 1 : 0) + (lower ? 1 : 0) + (digit ? 1 : 0);
        return digit && classes >= 2 && TokenShape.Entropy(value) >= 3.0 && TokenShape.Wordiness(value) < 0.5;
    }

    // A password in an assignment is a secret whatever its strength; but "password: required" is prose, so the value
    // must be quoted or carry a digit or a symbol.
    private static bool AcceptPassword(string text, Match match, Group secret)
    {
        var value = secret.ValueSpan;
        if (TokenShape.IsPlaceholder(value) || IsPlaceholderWord(value) || value.Contains("://", StringComparison.Ordinal) || value.Contains('(') || value.Contains('['))
        {
            return false;
        }

        var quoted = match.Groups["quote"].Length > 0;
        return quoted || value.ContainsAnyInRange('0', '9') || value.ContainsAnyExcept(LettersOnly);
    }

    private static readonly System.Buffers.SearchValues<char> LettersOnly =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    // Password=… counts as a connection string only next to a server, host or data source on the same line.
    private static bool AcceptAdoPassword(string text, Match match, Group secret)
    {
        if (!AcceptValue(text, match, secret))
        {
            return false;
        }

        var lineStart = text.LastIndexOf('\n', match.Index) + 1;
        var lineEnd = text.IndexOf('\n', match.Index);
        var line = text.AsSpan(lineStart, (lineEnd < 0 ? text.Length : lineEnd) - lineStart);
        return line.Contains("server=", StringComparison.OrdinalIgnoreCase) || line.Contains("data source=", StringComparison.OrdinalIgnoreCase)
            || line.Contains("host=", StringComparison.OrdinalIgnoreCase) || line.Contains("addr=", StringComparison.OrdinalIgnoreCase)
            || line.Contains("address=", StringComparison.OrdinalIgnoreCase);
    }

    private static readonly string[] NotSecretSuffixes = ["id", "ids", "name", "names", "arn", "path", "file", "url", "uri", "type", "version", "count", "limit", "length", "ttl", "expiry", "expires", "header"];

    // private_key_id, secret_name, token_url, api_key_header: the key names something about a secret, not the secret.
    private static bool NamesNoSecret(ReadOnlySpan<char> suffix)
    {
        foreach (var word in NotSecretSuffixes)
        {
            if (suffix.EndsWith(word, StringComparison.OrdinalIgnoreCase) && (suffix.Length == word.Length || !char.IsAsciiLetter(suffix[^(word.Length + 1)]) || char.IsAsciiLetterUpper(suffix[^word.Length])))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsPlaceholderWord(ReadOnlySpan<char> value) =>
        value.Equals("password", StringComparison.OrdinalIgnoreCase) || value.Equals("pass", StringComparison.OrdinalIgnoreCase)
        || value.Equals("passwd", StringComparison.OrdinalIgnoreCase) || value.Equals("secret", StringComparison.OrdinalIgnoreCase)
        || value.Equals("pwd", StringComparison.OrdinalIgnoreCase);
}
