using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Flotilla.Fleet;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Guardrails.Tests.Webhook;

public sealed class WebhookGuardrailTests : IDisposable
{
    private readonly HttpClient _http = new();

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public void Dispose() => _http.Dispose();

    private GuardrailPipeline Pipeline(WebhookServer server, GuardrailAction action = GuardrailAction.Block, bool failOpen = false, int timeoutMs = 5000, TimeProvider? time = null) =>
        new(GuardrailHook.McpPostTool, [Rails.Of(GuardrailTypes.Webhook, action, "corp-dlp", url: server.Url, timeoutMs: timeoutMs, failOpen: failOpen)], _http, time);

    [Fact]
    public async Task The_webhook_receives_hook_guardrail_agent_team_and_texts_as_json()
    {
        await using var server = WebhookServer.Answering("""{"action":"allow"}""");

        var outcome = await Pipeline(server).RunAsync(["first", "second \"quoted\""], Rails.Context, Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed);
        outcome.Verdicts.Single().Effect.ShouldBe(GuardrailEffect.None);
        using var request = JsonDocument.Parse(server.Requests.Single());
        var root = request.RootElement;
        root.GetProperty("hook").GetString().ShouldBe("mcp_post_tool");
        root.GetProperty("guardrail").GetString().ShouldBe("corp-dlp");
        root.GetProperty("agent").GetString().ShouldBe("bug-report-triage");
        root.GetProperty("team").GetString().ShouldBe("platform-team");
        root.GetProperty("texts").EnumerateArray().Select(t => t.GetString()).ShouldBe(["first", "second \"quoted\""]);
    }

    [Fact]
    public async Task A_block_answer_blocks_with_the_webhooks_reason()
    {
        await using var server = WebhookServer.Answering("""{"action":"block","reason":"customer data in a tool result"}""");

        var outcome = await Pipeline(server).RunAsync(["rows..."], Rails.Context, Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Blocked);
        outcome.Reason.ShouldBe("mcp_post_tool guardrail 'corp-dlp' (webhook) blocked the call: customer data in a tool result");
        outcome.Verdicts.Single().Findings.ShouldBe([new GuardrailFinding("block", 1)]);
    }

    [Fact]
    public async Task A_reason_that_echoes_a_secret_is_scrubbed()
    {
        await using var server = WebhookServer.Answering("""{"action":"block","reason":"found AKIAIOSFODNN7EXAMPLE in text 1"}""");

        var outcome = await Pipeline(server).RunAsync(["AKIAIOSFODNN7EXAMPLE"], Rails.Context, Cancel);

        outcome.Reason!.ShouldNotContain("AKIAIOSFODNN7EXAMPLE");
        outcome.Reason!.ShouldContain("found [REDACTED:aws-access-key-id] in text 1");
    }

    [Fact]
    public async Task A_redact_webhook_replaces_the_texts()
    {
        await using var server = WebhookServer.Answering("""{"action":"redact","texts":["name: [name]","ok"]}""");

        var outcome = await Pipeline(server, GuardrailAction.Redact).RunAsync(["name: Jane Doe", "ok"], Rails.Context, Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Redacted);
        outcome.Texts.ShouldBe(["name: [name]", "ok"]);
        outcome.Verdicts.Single().Effect.ShouldBe(GuardrailEffect.Redacted);
    }

    [Fact]
    public async Task A_block_webhook_that_answers_redact_blocks_because_it_may_not_change_text()
    {
        await using var server = WebhookServer.Answering("""{"action":"redact","texts":["x"]}""");

        var outcome = await Pipeline(server).RunAsync(["y"], Rails.Context, Cancel);

        outcome.IsBlocked.ShouldBeTrue();
        outcome.Reason!.ShouldEndWith("the webhook answered redact");
    }

    [Fact]
    public async Task A_redact_answer_with_the_wrong_number_of_texts_is_an_error()
    {
        await using var server = WebhookServer.Answering("""{"action":"redact","texts":["only one"]}""");

        var outcome = await Pipeline(server, GuardrailAction.Redact).RunAsync(["a", "b"], Rails.Context, Cancel);

        outcome.IsBlocked.ShouldBeTrue();
        outcome.Reason!.ShouldContain("webhook answered redact without 2 texts; failing closed");
    }

    [Fact]
    public async Task A_timeout_fails_closed_by_default()
    {
        var time = new FakeTimeProvider();
        await using var server = WebhookServer.Start(async (_, stop) => { await Task.Delay(Timeout.Infinite, stop); return (200, ""); });

        var run = Pipeline(server, timeoutMs: 1000, time: time).RunAsync(["text"], Rails.Context, Cancel).AsTask();
        await server.Received.Task.WaitAsync(TimeSpan.FromSeconds(30), Cancel);
        time.Advance(TimeSpan.FromMilliseconds(999));
        run.IsCompleted.ShouldBeFalse("the webhook still has a millisecond");
        time.Advance(TimeSpan.FromMilliseconds(1));
        var outcome = await run.WaitAsync(TimeSpan.FromSeconds(30), Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Blocked);
        outcome.Reason.ShouldBe("mcp_post_tool guardrail 'corp-dlp' (webhook) blocked the call: webhook did not answer within 1000 ms; "
            + "failing closed (set on_error: allow to let calls through when it is down)");
        outcome.Verdicts.Single().DurationMicroseconds.ShouldBe(1_000_000);
    }

    [Fact]
    public async Task A_timeout_fails_open_when_configured_and_the_verdict_says_so()
    {
        var time = new FakeTimeProvider();
        await using var server = WebhookServer.Start(async (_, stop) => { await Task.Delay(Timeout.Infinite, stop); return (200, ""); });

        var run = Pipeline(server, failOpen: true, timeoutMs: 250, time: time).RunAsync(["text"], Rails.Context, Cancel).AsTask();
        await server.Received.Task.WaitAsync(TimeSpan.FromSeconds(30), Cancel);
        time.Advance(TimeSpan.FromMilliseconds(250));
        var outcome = await run.WaitAsync(TimeSpan.FromSeconds(30), Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed);
        var verdict = outcome.Verdicts.Single();
        verdict.Effect.ShouldBe(GuardrailEffect.FailedOpen);
        verdict.Note.ShouldBe("webhook did not answer within 250 ms; failing open (on_error: allow)");
    }

    [Theory]
    [InlineData(500, """{"action":"allow"}""", "webhook answered HTTP 500")]
    [InlineData(200, "not json", "webhook answered with invalid JSON")]
    [InlineData(200, """{"reason":"no action"}""", "webhook answered without an action")]
    [InlineData(200, """{"action":"maybe"}""", "webhook answered an unknown action (expected allow, block or redact)")]
    public async Task Errors_fail_closed_or_open_as_configured(int status, string body, string failure)
    {
        await using var server = WebhookServer.Answering(body, status);

        var closed = await Pipeline(server).RunAsync(["t"], Rails.Context, Cancel);
        var open = await Pipeline(server, failOpen: true).RunAsync(["t"], Rails.Context, Cancel);

        closed.IsBlocked.ShouldBeTrue();
        closed.Reason!.ShouldContain(failure + "; failing closed");
        open.Decision.ShouldBe(GuardrailDecision.Allowed);
        open.Verdicts.Single().Note.ShouldBe(failure + "; failing open (on_error: allow)");
    }

    [Fact]
    public async Task An_unreachable_webhook_fails_closed()
    {
        int port;
        using (var socket = new TcpListener(IPAddress.Loopback, 0))
        {
            socket.Start();
            port = ((IPEndPoint)socket.LocalEndpoint).Port;
        }

        var pipeline = new GuardrailPipeline(GuardrailHook.LlmInput, [Rails.Of(GuardrailTypes.Webhook, url: new Uri($"http://127.0.0.1:{port}/"))], _http);

        var outcome = await pipeline.RunAsync(["t"], Rails.Context, Cancel);

        outcome.IsBlocked.ShouldBeTrue();
        outcome.Reason!.ShouldContain("webhook could not be reached (ConnectionError); failing closed");
    }

    [Fact]
    public async Task An_audit_webhook_that_fails_never_blocks()
    {
        await using var server = WebhookServer.Answering("", 503);

        var outcome = await Pipeline(server, GuardrailAction.Audit).RunAsync(["t"], Rails.Context, Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed);
        outcome.Verdicts.Single().Effect.ShouldBe(GuardrailEffect.Audited);
    }

    [Fact]
    public async Task Cancelling_the_call_cancels_the_webhook_instead_of_failing_open_or_closed()
    {
        await using var server = WebhookServer.Start(async (_, stop) => { await Task.Delay(Timeout.Infinite, stop); return (200, ""); });
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Cancel);

        var run = Pipeline(server, failOpen: true).RunAsync(["t"], Rails.Context, cancel.Token).AsTask();
        await server.Received.Task.WaitAsync(TimeSpan.FromSeconds(30), Cancel);
        await cancel.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(run);
    }

    [Fact]
    public async Task Validators_run_in_parallel()
    {
        // Each webhook answers only once both requests have arrived: run one after the other, the first would wait for
        // the second until its timeout and fail closed.
        var both = new CountdownEvent(2);
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<(int, string)> Barrier(string body, CancellationToken stop)
        {
            if (both.Signal())
            {
                arrived.SetResult();
            }

            await arrived.Task.WaitAsync(stop);
            return (200, """{"action":"allow"}""");
        }

        await using var first = WebhookServer.Start(Barrier);
        await using var second = WebhookServer.Start(Barrier);
        var pipeline = new GuardrailPipeline(GuardrailHook.LlmInput,
        [
            Rails.Of(GuardrailTypes.Webhook, name: "first", url: first.Url, timeoutMs: 10_000),
            Rails.Secrets(),
            Rails.Of(GuardrailTypes.Webhook, name: "second", url: second.Url, timeoutMs: 10_000),
        ], _http);

        var outcome = await pipeline.RunAsync(["clean text"], Rails.Context, Cancel);

        outcome.Decision.ShouldBe(GuardrailDecision.Allowed, outcome.Reason);
        outcome.Verdicts.Select(v => v.Name).ShouldBe(["first", "secrets-detection", "second"]);
    }

    [Fact]
    public async Task A_webhook_mutator_sees_the_output_of_the_mutator_before_it()
    {
        await using var server = WebhookServer.Start((body, _) =>
        {
            var text = JsonDocument.Parse(body).RootElement.GetProperty("texts")[0].GetString()!;
            return Task.FromResult((200, JsonSerializer.Serialize(new { action = "redact", texts = new[] { text.ToUpperInvariant() } })));
        });
        var pipeline = new GuardrailPipeline(GuardrailHook.LlmInput,
            [Rails.Secrets(GuardrailAction.Redact), Rails.Of(GuardrailTypes.Webhook, GuardrailAction.Redact, url: server.Url)], _http);

        var outcome = await pipeline.RunAsync(["key AKIAIOSFODNN7EXAMPLE"], Rails.Context, Cancel);

        server.Requests.Single().ShouldNotContain("AKIAIOSFODNN7EXAMPLE");
        outcome.Texts.ShouldBe(["KEY [REDACTED:AWS-ACCESS-KEY-ID]"]);
    }

    [Fact]
    public async Task A_streaming_guard_with_a_webhook_holds_the_whole_text_and_checks_it_once()
    {
        await using var server = WebhookServer.Answering("""{"action":"allow"}""");
        var guard = Pipeline(server).CreateStreamingGuard(Rails.Context);

        foreach (var delta in StreamingGuardTests.Split(new string('x', 2000), 100, 100))
        {
            (await guard.AppendAsync(delta, Cancel)).Text.ShouldBeEmpty();
        }

        (await guard.CompleteAsync(Cancel)).Text.Length.ShouldBe(2000);
        server.Requests.Count.ShouldBe(1);
        guard.Verdicts.Single().Name.ShouldBe("corp-dlp");
    }
}
