using System.Text;
using Flotilla.Fleet;
using Flotilla.Fleet.Loading;

namespace Flotilla.Benchmarks;

/// <summary>Inputs shared by the benchmarks: the load benchmark's 1 KB chat body, a fleet, canned upstream answers.</summary>
public static class BenchData
{
    public const string UpstreamKeyVariable = "BENCH_UPSTREAM_KEY";

    /// <summary>bench/load/chat.json: system and user message, one tool, 1024 bytes, <c>"model":"bench"</c>.</summary>
    public static byte[] ChatBody { get; } = ReadResource("chat.json");

    /// <summary>The chat body with <c>"stream":true</c>.</summary>
    public static byte[] StreamBody { get; } = Encoding.UTF8.GetBytes("{\"stream\":true," + Encoding.UTF8.GetString(ChatBody)[1..]);

    public const string FleetYaml = """
        gateway:
          providers:
            - { name: upstream, type: openai, base_url: "http://upstream.invalid/v1", api_key: "${env:BENCH_UPSTREAM_KEY}" }
          models:
            - { name: model-a, provider: upstream, model: gpt-4o-mini, price: { input_per_million: 0.15, output_per_million: 0.60 } }
            - { name: model-b, provider: upstream, model: gpt-4o, price: { input_per_million: 2.50, output_per_million: 10.00 } }
            - { name: model-c, provider: upstream, model: gpt-4.1-mini, price: { input_per_million: 0.40, output_per_million: 1.60 } }
          routing:
            virtual_model: bench
            virtual_models:
              - name: bench
                strategy: priority
                targets: [ { model: model-a, priority: 0 }, { model: model-b, priority: 1 }, { model: model-c, priority: 2 } ]
                ttft_timeout_ms: 4000
              - name: bench-weight
                strategy: weight
                targets: [ { model: model-a, weight: 3 }, { model: model-b, weight: 1 }, { model: model-c, weight: 1 } ]
              - name: bench-latency
                strategy: latency
                targets: [ { model: model-a }, { model: model-b }, { model: model-c } ]
        ---
        agent:
          name: bench-agent
          owner: bench-team
          model: bench
        """;

    /// <summary>Fleet-wide rate limit and budget with limits a benchmark never reaches (both estimate input tokens).</summary>
    public const string LimitsYaml = """
          budgets:
            - { applies_per: agent, limit: 1000000/day, alert_at: [75, 90, 100] }
          rate_limits:
            - { applies_per: agent, requests_per_minute: 1000000000, tokens_per_minute: 1000000000000 }
        """;

    /// <summary>The guardrails of the seed's example fleet: prompt injection on input, PII and secrets on output.</summary>
    public const string GuardrailsYaml = """
          guardrails:
            llm_input: [prompt-injection]
            llm_output: [pii, secrets-detection]
        """;

    /// <summary>
    /// The benchmark fleet with a policy level: <c>none</c> (routing and traces only), <c>limits</c> (plus a rate limit
    /// and a budget) or <c>full</c> (plus guardrails), the same chain bench/run.sh declares.
    /// </summary>
    public static FleetConfig LoadFleet(string policy = "none")
    {
        Environment.SetEnvironmentVariable(UpstreamKeyVariable, "bench-upstream-key");
        var extra = policy switch
        {
            "none" => "",
            "limits" => LimitsYaml,
            "full" => LimitsYaml + "\n" + GuardrailsYaml,
            _ => throw new ArgumentException($"unknown policy level '{policy}'", nameof(policy)),
        };
        var yaml = FleetYaml.Replace("\n---\n", "\n" + extra + "\n---\n", StringComparison.Ordinal);
        var result = FleetLoader.Parse(yaml, "bench.yaml");
        return result.Fleet ?? throw new InvalidOperationException(string.Join("\n", result.Errors));
    }

    public static byte[] Completion { get; } = """
        {"id":"chatcmpl-flotilla-bench","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The integration tests timed out waiting for Postgres; restart the database container and rerun the step.","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":231,"completion_tokens":19,"total_tokens":250},"system_fingerprint":"fp_bench"}
        """u8.ToArray();

    /// <summary>An OpenAI stream: a role chunk, <paramref name="contentChunks"/> content chunks, a finish chunk, usage, [DONE].</summary>
    public static byte[] SseStream(int contentChunks)
    {
        const string Head = "{\"id\":\"chatcmpl-flotilla-bench\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",";
        var text = new StringBuilder();
        text.Append("data: ").Append(Head).Append("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
        for (var i = 0; i < contentChunks; i++)
        {
            text.Append("data: ").Append(Head).Append("\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token").Append(i).Append("\"},\"finish_reason\":null}]}\n\n");
        }

        text.Append("data: ").Append(Head).Append("\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
        text.Append("data: ").Append(Head).Append("\"choices\":[],\"usage\":{\"prompt_tokens\":231,\"completion_tokens\":").Append(contentChunks).Append(",\"total_tokens\":").Append(231 + contentChunks).Append("}}\n\n");
        text.Append("data: [DONE]\n\n");
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static byte[] ReadResource(string name)
    {
        using var stream = typeof(BenchData).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"resource {name} missing");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
