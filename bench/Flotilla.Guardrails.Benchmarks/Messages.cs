using System.Text;

namespace Flotilla.Guardrails.Benchmarks;

/// <summary>The measured inputs: a 4 KB message of ordinary engineering text, the same with two credentials in it, and a short turn.</summary>
public static class Messages
{
    public const int Size = 4096;

    private static readonly string[] Paragraphs =
    [
        "The nightly triage loop finished in 4m12s and labelled 37 issues; two were duplicates of #1204 and one was a feature request.",
        "Release 1.2.3 ships on 17/05/2024. We bumped the SDK from 10.0.100 to 10.0.401 and Polly.Core to 8.9.1.",
        "Trace 123e4567-e89b-12d3-a456-426614174000 shows two retries against gpt-4o-mini and a fallback to claude-haiku after a 503.",
        "Commit 3f9a2c1e8b7d6f5a4e3d2c1b0a9f8e7d6c5b4a39 fixed the race in the cooldown timer; see https://github.com/acme/flotilla/pull/1234.",
        "Run the following command to restore packages: dotnet restore Flotilla.slnx, then dotnet build -c Release.",
        "gpt-4o-mini costs $0.15 per million input tokens and $0.60 per million output tokens; our bill was $1,299.99 last month.",
        "The incident started at 14:30 UTC and ended at 15:05; p99 latency peaked at 2.1 s and the error rate at 4%.",
        "var route = _routes[request.Model] ?? _routes[_defaultModel]; foreach (var target in route.Targets) { await SendAsync(target); }",
        "We should merge the PR once CI is green. Listen on 127.0.0.1:8080 locally; the container binds 0.0.0.0:8080.",
        "Set max_tokens=4096 and temperature=0.2 for the summariser; api_key: ${env:OPENAI_API_KEY} stays out of the file.",
    ];

    /// <summary>4,096 characters of ordinary text: nothing for any guardrail to find.</summary>
    public static string Ordinary { get; } = Build(withSecret: false);

    /// <summary>The same size, with an AWS access key id and a GitHub token in the middle.</summary>
    public static string WithSecret { get; } = Build(withSecret: true);

    /// <summary>A typical chat turn: the first 320 characters of <see cref="Ordinary"/>.</summary>
    public static string Turn { get; } = Ordinary[..320];

    private static string Build(bool withSecret)
    {
        var builder = new StringBuilder(Size + 200);
        var i = 0;
        while (builder.Length < Size)
        {
            if (withSecret && i == 12)
            {
                builder.Append("Rotate AKIAIOSFODNN7EXAMPLE and ghp_FAKE0123456789abcdefghijklmnopqrstuv today. ");
            }

            builder.Append(Paragraphs[i++ % Paragraphs.Length]).Append(i % 3 == 0 ? "\n\n" : " ");
        }

        return builder.ToString(0, Size);
    }
}
