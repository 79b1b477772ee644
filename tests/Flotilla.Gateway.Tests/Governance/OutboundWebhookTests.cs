using System.Net;
using Flotilla.Governance.Http;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Time.Testing;
using static Flotilla.Gateway.Tests.Governance.GovernanceFleet;

namespace Flotilla.Gateway.Tests.Governance;

/// <summary>
/// Guardrail and alert webhooks are called under the upstream client policy: a redirect is an answer, never followed (the
/// payload must not go somewhere the fleet file does not name); an oversized answer is an error, not a memory sink.
/// </summary>
public sealed class OutboundWebhookTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_guardrail_webhook_that_redirects_is_an_error_and_the_texts_never_reach_the_redirect_target()
    {
        await using var elsewhere = await LocalSite.StartAsync(context => { context.Response.StatusCode = 200; return context.Response.WriteAsync("""{"action":"allow"}"""); });
        await using var hook = await LocalSite.StartAsync(context => { context.Response.Redirect(elsewhere.Url.ToString(), permanent: false, preserveMethod: true); return Task.CompletedTask; });
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            guardrails:
              llm_input:
                - { type: webhook, name: dlp, url: "{{hook.Url}}", timeout_ms: 2000, on_error: allow }
            """));

        using var response = await host.Http.PostChatAsync(Chat("cheap", "a customer's message"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK);
        var trace = await host.TraceAsync(Header(response, "X-Flotilla-Trace-Id"));
        var verdict = trace.GetProperty("guardrails").EnumerateArray().Single(v => v.GetProperty("guardrail").GetString() == "dlp");
        verdict.GetProperty("outcome").GetString().ShouldBe("failed_open");
        verdict.GetProperty("detail").GetString()!.ShouldContain("307");
        hook.Requests.ShouldBe(1);
        elsewhere.Requests.ShouldBe(0);
    }

    [Fact]
    public async Task A_guardrail_webhook_answer_over_the_size_limit_is_an_error()
    {
        var huge = new string(' ', 2 * 1024 * 1024) + """{"action":"allow"}""";
        await using var hook = await LocalSite.StartAsync(context => context.Response.WriteAsync(huge));
        await using var upstream = await FakeUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            guardrails:
              llm_input:
                - { type: webhook, name: dlp, url: "{{hook.Url}}", timeout_ms: 5000 }
            """));

        using var response = await host.Http.PostChatAsync(Chat("cheap", "hello"), cancellationToken: Ct).ExpectAsync(HttpStatusCode.BadRequest);
        (await GatewayHost.ErrorAsync(response)).GetProperty("message").GetString()!.ShouldContain("over 1024 KB");
        upstream.Requests.Count.ShouldBe(0);
    }

    [Fact]
    public async Task An_alert_webhook_that_redirects_is_not_followed_and_the_alert_is_marked_failed()
    {
        await using var elsewhere = await LocalSite.StartAsync(context => { context.Response.StatusCode = 200; return Task.CompletedTask; });
        await using var hook = await LocalSite.StartAsync(context => { context.Response.Redirect(elsewhere.Url.ToString(), permanent: true, preserveMethod: true); return Task.CompletedTask; });
        await using var upstream = await FakeUpstream.StartAsync();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 3, 14, 12, 0, 0, TimeSpan.Zero));
        await using var host = await GatewayHost.StartAsync(Priced(upstream, $$"""
            budgets:
              - { applies_per: agent, limit: 10/day, alert_at: [50] }
            alerts: { webhook: "{{hook.Url}}" }
            """), time);

        using (await host.Http.PostChatAsync(Chat(), cancellationToken: Ct).ExpectAsync(HttpStatusCode.OK)) { }

        // Five tries with backoff on the gateway's clock, then 'failed'.
        await host.AlertsAsync(a => a.Any(x => x.GetProperty("delivery").GetString() == "failed"), tick: () => time.Advance(TimeSpan.FromSeconds(1)));
        hook.Requests.ShouldBe(5);
        elsewhere.Requests.ShouldBe(0);
    }

    [Fact]
    public void The_webhook_client_ignores_proxy_variables_and_redirects_and_bounds_what_it_buffers()
    {
        using var handler = OutboundHttp.CreateWebhookHandler();
        handler.UseProxy.ShouldBeFalse();
        handler.AllowAutoRedirect.ShouldBeFalse();
        handler.UseCookies.ShouldBeFalse();
        using var client = OutboundHttp.CreateWebhookClient(TimeSpan.FromSeconds(5));
        client.MaxResponseContentBufferSize.ShouldBe(OutboundHttp.MaxWebhookAnswerBytes);
        client.Timeout.ShouldBe(TimeSpan.FromSeconds(5));
    }
}
