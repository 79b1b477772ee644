using System.Text;
using Flotilla.Fleet;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Gateway.Routing;
using Flotilla.Gateway.Tests.Fakes;
using Flotilla.Storage.Traces;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Routing;

public sealed class CallDispatcherTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(10);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly TargetHealthBoard _health;
    private readonly FakeModelProvider _pa = new("pa");
    private readonly FakeModelProvider _pb = new("pb");
    private readonly FakeModelProvider _pc = new("pc");

    public CallDispatcherTests()
    {
        _health = new TargetHealthBoard(_time);
    }

    private static ChatRequest Request() =>
        ChatRequest.ParseChat("""{"model":"assistant","messages":[{"role":"user","content":"hi"}]}"""u8.ToArray());

    private CallDispatcher Dispatcher(RoutingConfig routing) => new(_health, routing);

    private Route TwoTargets(int[]? fallbackOn = null, int? ttftTimeoutMs = null) => TestRoutes.Virtual("assistant",
        [new RouteMember(TestRoutes.Model("a", _pa), 0, 1), new RouteMember(TestRoutes.Model("b", _pb), 1, 1)],
        fallbackOn: fallbackOn, ttftTimeoutMs: ttftTimeoutMs);

    private static Task<DispatchResult> Dispatch(CallDispatcher dispatcher, Route route) =>
        dispatcher.DispatchAsync(CallKind.Chat, Request(), route, TestContext.Current.CancellationToken);

    private static string Body(DispatchResult result) => Encoding.UTF8.GetString(result.Reply.Body!);

    private static (string Target, string Provider, int Status, string Outcome)[] Summary(DispatchResult result) =>
        [.. result.Attempts.Select(a => (a.Target, a.Provider, a.Status, a.Outcome))];

    [Fact]
    public async Task The_first_target_answers_when_it_is_healthy()
    {
        _pa.Answers();
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing()), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        result.Reply.IsSuccess.ShouldBeTrue();
        result.Target!.Name.ShouldBe("a");
        Body(result).ShouldBe(FakeModelProvider.AnswerBody("pa", "a-upstream"));
        Summary(result).ShouldBe([("a", "pa", 200, "ok")]);
        result.FellBack.ShouldBeFalse();
        _pb.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task A_configured_fallback_status_moves_on_to_the_next_target()
    {
        _pa.FailsWith(503);
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 0)), TwoTargets(fallbackOn: [503]))
            .WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        result.Target!.Name.ShouldBe("b");
        Body(result).ShouldBe(FakeModelProvider.AnswerBody("pb", "b-upstream"));
        Summary(result).ShouldBe([("a", "pa", 503, "status"), ("b", "pb", 200, "ok")]);
        result.FellBack.ShouldBeTrue();
        result.AttemptCount.ShouldBe(2);
    }

    [Fact]
    public async Task A_status_not_in_fallback_on_is_returned_without_trying_the_next_target()
    {
        _pa.FailsWith(500);
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 0)), TwoTargets(fallbackOn: [503]))
            .WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        result.Reply.IsSuccess.ShouldBeFalse();
        result.Reply.Status.ShouldBe(500);
        result.Target!.Name.ShouldBe("a");
        _pb.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task A_400_is_the_callers_fault_so_it_is_neither_retried_nor_sent_elsewhere()
    {
        _pa.FailsWith(400);
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 2)), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        result.Reply.Outcome.ShouldBe(AttemptOutcome.Status);
        result.Reply.Status.ShouldBe(400);
        result.Reply.Error.ShouldBe("provider 'pa' answered 400");
        Summary(result).ShouldBe([("a", "pa", 400, "status")]);
        _pa.Calls.ShouldBe(1);
        _pb.Calls.ShouldBe(0);
        _health.Snapshot().ShouldNotContainKey("a");
    }

    [Fact]
    public async Task A_retried_status_is_tried_once_plus_the_configured_retries_and_no_more()
    {
        _pa.FailsWith(503);
        var route = TestRoutes.Virtual("assistant", [new RouteMember(TestRoutes.Model("a", _pa), 0, 1)]);

        var result = await _time.RunUntilCompleteAsync(Dispatch(Dispatcher(TestRoutes.Routing(retries: 2, cooldownFailures: 100)), route), Step);

        _pa.Calls.ShouldBe(3);
        result.AttemptCount.ShouldBe(3);
        result.Attempts.ShouldAllBe(a => a.Status == 503);
        result.Reply.Status.ShouldBe(503);
    }

    [Fact]
    public async Task Across_targets_attempts_are_bounded_by_targets_times_one_plus_retries()
    {
        _pa.FailsWith(503);
        _pb.FailsWith(502);
        _pc.FailsWith(500);
        var route = TestRoutes.Priority("assistant", TestRoutes.Model("a", _pa), TestRoutes.Model("b", _pb), TestRoutes.Model("c", _pc));

        var result = await _time.RunUntilCompleteAsync(Dispatch(Dispatcher(TestRoutes.Routing(retries: 2, cooldownFailures: 100)), route), Step);

        (_pa.Calls, _pb.Calls, _pc.Calls).ShouldBe((3, 3, 3));
        result.AttemptCount.ShouldBe(9);
        result.Attempts.Select(a => a.Target).ShouldBe(["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
        result.Reply.Status.ShouldBe(500);
        result.Target!.Name.ShouldBe("c");
    }

    [Fact]
    public async Task Zero_retries_means_one_attempt_per_target()
    {
        _pa.FailsWith(503);
        _pb.FailsWith(503);

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 0)), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        (_pa.Calls, _pb.Calls).ShouldBe((1, 1));
        result.AttemptCount.ShouldBe(2);
    }

    [Fact]
    public async Task A_retry_that_succeeds_answers_from_the_same_target()
    {
        _pa.FailsWith(503).Answers();
        _pb.Answers();

        var result = await _time.RunUntilCompleteAsync(Dispatch(Dispatcher(TestRoutes.Routing(retries: 2)), TwoTargets()), Step);

        result.Target!.Name.ShouldBe("a");
        Summary(result).ShouldBe([("a", "pa", 503, "status"), ("a", "pa", 200, "ok")]);
        result.FellBack.ShouldBeFalse();
        _pb.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task A_fallback_status_that_is_not_retried_moves_on_after_one_attempt()
    {
        _pa.FailsWith(504);
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 2)), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        _pa.Calls.ShouldBe(1);
        Summary(result).ShouldBe([("a", "pa", 504, "status"), ("b", "pb", 200, "ok")]);
    }

    [Fact]
    public async Task Retry_after_is_the_delay_before_the_retry()
    {
        _pa.FailsWith(429, retryAfter: TimeSpan.FromSeconds(2)).Answers();
        var route = TestRoutes.Virtual("assistant", [new RouteMember(TestRoutes.Model("a", _pa), 0, 1)]);

        var task = Dispatch(Dispatcher(TestRoutes.Routing(retries: 2, baseDelayMs: 10, maxDelayMs: 5_000)), route);

        _pa.Calls.ShouldBe(1);
        _time.Advance(TimeSpan.FromMilliseconds(1_999));
        await Task.Yield();
        _pa.Calls.ShouldBe(1);
        task.IsCompleted.ShouldBeFalse();

        _time.Advance(TimeSpan.FromMilliseconds(1));
        var result = await task.WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        _pa.Calls.ShouldBe(2);
        result.Reply.IsSuccess.ShouldBeTrue();
        Summary(result).ShouldBe([("a", "pa", 429, "status"), ("a", "pa", 200, "ok")]);
    }

    [Fact]
    public async Task Retry_after_beyond_max_delay_falls_back_at_once_and_cools_the_target_until_then()
    {
        _pa.FailsWith(429, retryAfter: TimeSpan.FromSeconds(60)).Answers();
        _pb.Answers();

        // No fake time passes: the task can only complete if nothing waited.
        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 2, maxDelayMs: 5_000)), TwoTargets())
            .WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        _pa.Calls.ShouldBe(1);
        Summary(result).ShouldBe([("a", "pa", 429, "status"), ("b", "pb", 200, "ok")]);
        _health.IsCoolingDown("a").ShouldBeTrue();
        _time.Advance(TimeSpan.FromSeconds(60));
        _health.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public async Task A_connection_error_is_recorded_and_falls_back()
    {
        _pa.CannotConnect();
        _pb.Answers();

        var result = await Dispatch(Dispatcher(TestRoutes.Routing(retries: 0)), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        Summary(result).ShouldBe([("a", "pa", 0, "connect_error"), ("b", "pb", 200, "ok")]);
        result.Attempts[0].Error.ShouldBe("cannot reach provider 'pa': connection refused (fake)");
        result.Target!.Name.ShouldBe("b");
    }

    [Fact]
    public async Task A_connection_error_is_retried_on_the_same_target()
    {
        _pa.CannotConnect().Answers();
        _pb.Answers();

        var result = await _time.RunUntilCompleteAsync(Dispatch(Dispatcher(TestRoutes.Routing(retries: 1)), TwoTargets()), Step);

        Summary(result).ShouldBe([("a", "pa", 0, "connect_error"), ("a", "pa", 200, "ok")]);
        _pb.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task A_target_that_sends_nothing_before_the_ttft_cut_off_is_abandoned_for_the_next()
    {
        _pa.Hangs();
        _pb.Answers();
        var task = Dispatch(Dispatcher(TestRoutes.Routing(retries: 2)), TwoTargets(ttftTimeoutMs: 500));

        _time.Advance(TimeSpan.FromMilliseconds(499));
        await Task.Yield();
        task.IsCompleted.ShouldBeFalse();
        _pb.Calls.ShouldBe(0);

        var result = await _time.RunUntilCompleteAsync(task, Step);

        Summary(result).ShouldBe([("a", "pa", 0, "ttft_timeout"), ("b", "pb", 200, "ok")]);
        result.Attempts[0].LatencyMs.ShouldBeGreaterThanOrEqualTo(500);
        result.Attempts[0].Error.ShouldBe("provider 'pa' sent nothing within the 500 ms time-to-first-token cut-off");
        _pa.Calls.ShouldBe(1);
        _pa.Cancelled.ShouldBe(1);
    }

    [Fact]
    public async Task The_callers_cancellation_is_not_a_ttft_timeout_and_does_not_fall_back()
    {
        _pa.Hangs();
        _pb.Answers();
        using var caller = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var task = Dispatcher(TestRoutes.Routing()).DispatchAsync(CallKind.Chat, Request(), TwoTargets(ttftTimeoutMs: 500), caller.Token);

        await caller.CancelAsync();

        await Should.ThrowAsync<OperationCanceledException>(task.WaitAsync(HangGuard, TestContext.Current.CancellationToken));
        _pb.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task A_cooling_target_is_skipped_and_recorded_as_skipped()
    {
        _pa.Answers();
        _pb.Answers();
        var routing = TestRoutes.Routing();
        for (var i = 0; i < routing.Cooldown.Failures; i++)
        {
            _health.RecordFailure("a", routing.Cooldown, null);
        }

        var result = await Dispatch(Dispatcher(routing), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        Summary(result).ShouldBe([("a", "pa", 0, "skipped_cooldown"), ("b", "pb", 200, "ok")]);
        result.AttemptCount.ShouldBe(1);
        result.FellBack.ShouldBeTrue();
        _pa.Calls.ShouldBe(0);
    }

    [Fact]
    public async Task Failures_during_calls_cool_a_target_for_later_calls()
    {
        _pa.FailsWith(503);
        _pb.Answers();
        var dispatcher = Dispatcher(TestRoutes.Routing(retries: 0, cooldownFailures: 2, cooldownSeconds: 30));

        await Dispatch(dispatcher, TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);
        await Dispatch(dispatcher, TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);
        var third = await Dispatch(dispatcher, TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        _pa.Calls.ShouldBe(2);
        Summary(third).ShouldBe([("a", "pa", 0, "skipped_cooldown"), ("b", "pb", 200, "ok")]);

        _time.Advance(TimeSpan.FromSeconds(30));
        var fourth = await Dispatch(dispatcher, TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);
        fourth.Attempts[0].Outcome.ShouldBe("status");
        _pa.Calls.ShouldBe(3);
    }

    [Fact]
    public async Task When_every_target_is_cooling_they_are_all_tried_anyway()
    {
        _pa.FailsWith(503);
        _pb.Answers();
        var routing = TestRoutes.Routing(retries: 0);
        foreach (var target in new[] { "a", "b" })
        {
            _health.RecordFailure(target, routing.Cooldown, TimeSpan.FromMinutes(5));
        }

        var result = await Dispatch(Dispatcher(routing), TwoTargets()).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        Summary(result).ShouldBe([("a", "pa", 503, "status"), ("b", "pb", 200, "ok")]);
        _health.IsCoolingDown("b").ShouldBeFalse();
    }

    [Fact]
    public async Task A_single_target_that_is_cooling_is_still_tried()
    {
        _pa.Answers();
        var routing = TestRoutes.Routing();
        _health.RecordFailure("a", routing.Cooldown, TimeSpan.FromMinutes(5));
        var route = TestRoutes.Virtual("assistant", [new RouteMember(TestRoutes.Model("a", _pa), 0, 1)]);

        var result = await Dispatch(Dispatcher(routing), route).WaitAsync(HangGuard, TestContext.Current.CancellationToken);

        Summary(result).ShouldBe([("a", "pa", 200, "ok")]);
    }

    private static DispatchResult Failed(UpstreamReply last, params TraceAttempt[] attempts) => new(last, null, [.. attempts]);

    private static TraceAttempt Attempt(string target, int status, string outcome) => new(target, "p" + target, status, outcome, 1, "failed");

    [Fact]
    public void The_caller_sees_429_with_retry_after_when_every_attempt_was_rate_limited()
    {
        var result = Failed(UpstreamReply.Failed(AttemptOutcome.Status, 429, "slow down", retryAfter: TimeSpan.FromSeconds(1.2)),
            Attempt("a", 429, "status"), Attempt("a", 429, "status"), new TraceAttempt("c", "pc", 0, "skipped_cooldown", 0), Attempt("b", 429, "status"));

        var error = CallDispatcher.ToCallerError(result, TwoTargets());

        error.Status.ShouldBe(429);
        error.Type.ShouldBe("rate_limit_error");
        error.Code.ShouldBe(ErrorCodes.AllTargetsFailed);
        error.RetryAfterSeconds.ShouldBe(2);
        error.Message.ShouldStartWith("Every target of virtual model 'assistant' is rate limited");
    }

    [Fact]
    public void The_caller_sees_504_when_every_attempt_timed_out()
    {
        var result = Failed(UpstreamReply.Failed(AttemptOutcome.Timeout, 0, "timed out"),
            Attempt("a", 0, "ttft_timeout"), Attempt("b", 0, "timeout"));

        var error = CallDispatcher.ToCallerError(result, TwoTargets());

        error.Status.ShouldBe(504);
        error.Type.ShouldBe("api_error");
        error.Code.ShouldBe(ErrorCodes.UpstreamTimeout);
        error.RetryAfterSeconds.ShouldBeNull();
    }

    [Theory]
    [InlineData(429, "status", 500, "status")]
    [InlineData(0, "ttft_timeout", 503, "status")]
    [InlineData(0, "connect_error", 0, "connect_error")]
    [InlineData(0, "timeout", 429, "status")]
    public void The_caller_sees_502_for_any_other_mix(int status1, string outcome1, int status2, string outcome2)
    {
        var result = Failed(UpstreamReply.Failed(AttemptOutcome.Status, status2, "failed"), Attempt("a", status1, outcome1), Attempt("b", status2, outcome2));

        var error = CallDispatcher.ToCallerError(result, TwoTargets());

        error.Status.ShouldBe(502);
        error.Code.ShouldBe(ErrorCodes.AllTargetsFailed);
        error.Message.ShouldContain("after 2 attempt(s)");
    }

    [Fact]
    public void The_caller_sees_502_when_nothing_could_be_tried()
    {
        var result = Failed(UpstreamReply.Failed(AttemptOutcome.SkippedCooldown, 0, "no target could be tried"),
            new TraceAttempt("a", "pa", 0, "skipped_cooldown", 0));

        CallDispatcher.ToCallerError(result, TwoTargets()).Status.ShouldBe(502);
    }
}
