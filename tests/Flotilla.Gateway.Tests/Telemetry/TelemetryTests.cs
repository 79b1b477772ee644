using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Telemetry;

/// <summary>
/// /metrics after known traffic, and spans over OTLP to a receiver on a real socket. The meter and activity source are
/// process-wide and other tests run alongside, so every assertion picks this test's series by a model name only it uses.
/// </summary>
public sealed partial class TelemetryTests
{
    private const string Secret = "sk-proj-DoNotLeakThis0123456789abcdef";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(FakeUpstream primary, FakeUpstream backup, string model, string telemetry = "") => $$"""
        gateway:
          providers:
            - { name: a, type: openai, base_url: "{{primary.BaseUrl}}" }
            - { name: b, type: openai, base_url: "{{backup.BaseUrl}}" }
          models:
            - { name: {{model}}-a, provider: a, model: upstream-a, price: { input_per_million: 500000, output_per_million: 500000 } }
            - { name: {{model}}-b, provider: b, model: upstream-b, price: { input_per_million: 500000, output_per_million: 500000 } }
          routing:
            virtual_models:
              - { name: {{model}}, targets: [ { model: {{model}}-a, priority: 0 }, { model: {{model}}-b, priority: 1 } ] }
            retries: { attempts: 0 }
          budgets:
            - { applies_per: agent, limit: 1000/day }
        {{telemetry}}
        """;

    [Fact]
    public async Task Metrics_after_known_traffic_show_exact_counts_tokens_cost_and_fallbacks_and_no_label_holds_a_key_prompt_or_tag()
    {
        var model = "metered-" + Guid.NewGuid().ToString("N")[..8];
        await using var primary = await FakeUpstream.StartAsync();
        await using var backup = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Fleet(primary, backup, model));
        for (var i = 0; i < 3; i++)
        {
            using var ok = await host.Http.PostChatAsync(Chat(model, content: "my-prompt-text " + Secret), metadata: """{"loop":"tag-value-xyz"}""", cancellationToken: Ct)
                .ExpectAsync(HttpStatusCode.OK);
        }

        primary.Enqueue(UpstreamBehaviour.Error(503));
        using (await host.Http.PostChatAsync(Chat(model), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        using var anonymous = new HttpClient { BaseAddress = host.Server.Address };
        var text = await anonymous.GetStringAsync("/metrics", Ct);
        var mine = text.Split('\n').Where(l => l.Contains($"gen_ai_request_model=\"{model}\"", StringComparison.Ordinal)).ToList();

        Value(mine, "flotilla_calls_total", "flotilla_outcome=\"ok\"", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(3);
        Value(mine, "flotilla_calls_total", "flotilla_outcome=\"ok\"", $"gen_ai_response_model=\"{model}-b\"").ShouldBe(1);
        Value(mine, "flotilla_fallbacks_total", $"gen_ai_response_model=\"{model}-b\"").ShouldBe(1);
        // The fake answers 12 tokens in and 7 out; at $0.50 a token a call costs $9.50.
        Value(mine, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"input\"", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(36);
        Value(mine, "gen_ai_client_token_usage_sum", "gen_ai_token_type=\"output\"", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(21);
        Value(mine, "gen_ai_client_token_usage_count", "gen_ai_token_type=\"input\"", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(3);
        Value(mine, "flotilla_cost_usd_total", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(28.5);
        Value(mine, "flotilla_tokens_total", "gen_ai_token_type=\"output\"", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(21);
        Value(mine, "gen_ai_client_operation_duration_seconds_count", $"gen_ai_response_model=\"{model}-a\"").ShouldBe(3);
        mine.ShouldAllBe(l => l.Contains("flotilla_agent=\"tester\"", StringComparison.Ordinal));

        text.ShouldNotContain(Secret);
        text.ShouldNotContain("my-prompt-text");
        text.ShouldNotContain("tag-value-xyz");
        text.ShouldNotContain(host.AgentKey);
        text.ShouldContain("flotilla_budget_spend_ratio{");
        text.ShouldContain("flotilla_trace_writer_queue_depth");
    }

    [Fact]
    public async Task Metrics_can_be_turned_off()
    {
        await using var primary = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Fleet(primary, primary, "quiet", "  telemetry: { metrics: false }"));
        using var anonymous = new HttpClient { BaseAddress = host.Server.Address };
        using var response = await anonymous.GetAsync("/metrics", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Spans_reach_an_otlp_receiver_under_the_callers_trace_id_which_is_also_the_header_and_the_upstreams_parent()
    {
        // An OTLP/HTTP receiver: it keeps the raw protobuf bodies posted to /v1/traces.
        await using var receiver = await LocalSite.StartAsync(context => { context.Response.ContentType = "application/x-protobuf"; return Task.CompletedTask; }, "/");
        var model = "traced-" + Guid.NewGuid().ToString("N")[..8];
        await using var primary = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Fleet(primary, primary, model, $"  telemetry: {{ otlp_endpoint: \"{receiver.Url}\" }}"));

        const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = GatewayHost.JsonContent(Chat(model, content: "my-prompt-text " + Secret)),
        };
        request.Headers.Add("traceparent", $"00-{TraceId}-00f067aa0ba902b7-01");
        request.Headers.Add("X-Flotilla-Metadata", """{"loop":"tag-value-xyz"}""");
        using var response = await host.Http.SendAsync(request, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        Header(response, "X-Flotilla-Trace-Id").ShouldBe(TraceId);

        // The upstream was called inside the trace: its traceparent carries the same trace id.
        primary.Requests[^1].Header("traceparent")!.ShouldStartWith($"00-{TraceId}-");

        // The trace store has the call under the same id.
        var stored = await host.TraceAsync(TraceId);
        stored.GetProperty("trace_id").GetString().ShouldBe(TraceId);
        stored.GetProperty("kind").GetString().ShouldBe("model_call");

        var traceBytes = Convert.FromHexString(TraceId);
        var body = await receiver.WaitForAsync(b => b.AsSpan().IndexOf(traceBytes) >= 0);
        var latin = Encoding.Latin1.GetString(body);
        foreach (var attribute in new[] { "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens", "flotilla.agent", "flotilla.cost_usd", model, $"chat {model}" })
        {
            latin.ShouldContain(attribute);
        }

        latin.ShouldNotContain(Secret);
        latin.ShouldNotContain("my-prompt-text");
        latin.ShouldNotContain("tag-value-xyz");
        latin.ShouldNotContain(host.AgentKey);
    }

    private static double Value(IEnumerable<string> lines, string metric, params string[] labels)
    {
        var line = lines.SingleOrDefault(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(x => l.Contains(x, StringComparison.Ordinal)))
            ?? throw new ShouldAssertException($"no {metric} with {string.Join(", ", labels)} in:\n{string.Join("\n", lines)}");
        return double.Parse(SampleValue().Match(line).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\}\s+(\S+)")]
    private static partial Regex SampleValue();
}
