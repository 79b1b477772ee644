using Flotilla.Fleet;
using Flotilla.Gateway.Routing;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Routing;

public sealed class TargetHealthBoardTests
{
    private static readonly CooldownConfig ThreeFailuresThirtySeconds = new(3, 30);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void A_target_cools_down_after_the_configured_consecutive_failures()
    {
        var board = new TargetHealthBoard(_time);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.IsCoolingDown("a").ShouldBeFalse();

        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);

        board.IsCoolingDown("a").ShouldBeTrue();
        board.Snapshot()["a"].CoolingUntil.ShouldBe(_time.GetUtcNow().AddSeconds(30));
        board.IsCoolingDown("b").ShouldBeFalse();
    }

    [Fact]
    public void A_success_clears_the_cooldown_and_the_failure_count()
    {
        var board = new TargetHealthBoard(_time);
        for (var i = 0; i < 3; i++)
        {
            board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        }

        board.RecordSuccess("a");

        board.IsCoolingDown("a").ShouldBeFalse();
        board.Snapshot()["a"].ConsecutiveFailures.ShouldBe(0);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void The_start_and_the_end_of_a_cooldown_are_each_told_once()
    {
        var started = new List<(string, DateTimeOffset)>();
        var ended = new List<string>();
        var board = new TargetHealthBoard(_time, (target, until) => started.Add((target, until)), ended.Add);
        for (var i = 0; i < 4; i++)
        {
            board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        }

        board.RecordSuccess("b");
        started.ShouldBe([("a", _time.GetUtcNow().AddSeconds(30))]);
        ended.ShouldBeEmpty();

        _time.Advance(TimeSpan.FromSeconds(31));
        board.RecordSuccess("a");
        board.RecordSuccess("a");
        ended.ShouldBe(["a"]);
    }

    [Fact]
    public void A_success_between_failures_resets_the_count()
    {
        var board = new TargetHealthBoard(_time);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordSuccess("a");
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);

        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void The_cooldown_ends_after_the_configured_seconds()
    {
        var board = new TargetHealthBoard(_time);
        for (var i = 0; i < 3; i++)
        {
            board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        }

        _time.Advance(TimeSpan.FromSeconds(30) - TimeSpan.FromMilliseconds(1));
        board.IsCoolingDown("a").ShouldBeTrue();

        _time.Advance(TimeSpan.FromMilliseconds(1));
        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void After_a_cooldown_one_more_failure_cools_the_target_again()
    {
        var board = new TargetHealthBoard(_time);
        for (var i = 0; i < 3; i++)
        {
            board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        }

        _time.Advance(TimeSpan.FromSeconds(30));
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);

        board.IsCoolingDown("a").ShouldBeTrue();
    }

    [Fact]
    public void Zero_cooldown_seconds_never_cools()
    {
        var board = new TargetHealthBoard(_time);
        for (var i = 0; i < 10; i++)
        {
            board.RecordFailure("a", new CooldownConfig(1, 0), null);
        }

        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void Retry_after_cools_the_target_until_then_even_before_the_failure_count_is_reached()
    {
        var board = new TargetHealthBoard(_time);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, TimeSpan.FromSeconds(90));

        board.IsCoolingDown("a").ShouldBeTrue();
        _time.Advance(TimeSpan.FromSeconds(89));
        board.IsCoolingDown("a").ShouldBeTrue();
        _time.Advance(TimeSpan.FromSeconds(1));
        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void Retry_after_longer_than_the_cooldown_extends_it()
    {
        var board = new TargetHealthBoard(_time);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, TimeSpan.FromMinutes(2));

        _time.Advance(TimeSpan.FromSeconds(31));
        board.IsCoolingDown("a").ShouldBeTrue();
        _time.Advance(TimeSpan.FromSeconds(89));
        board.IsCoolingDown("a").ShouldBeFalse();
    }

    [Fact]
    public void Retry_after_shorter_than_the_cooldown_does_not_shorten_it()
    {
        var board = new TargetHealthBoard(_time);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);
        board.RecordFailure("a", ThreeFailuresThirtySeconds, null);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, TimeSpan.FromSeconds(5));

        _time.Advance(TimeSpan.FromSeconds(29));
        board.IsCoolingDown("a").ShouldBeTrue();
    }

    [Fact]
    public void Retry_after_is_capped_at_ten_minutes()
    {
        var board = new TargetHealthBoard(_time);

        board.RecordFailure("a", ThreeFailuresThirtySeconds, TimeSpan.FromHours(6));

        board.Snapshot()["a"].CoolingUntil.ShouldBe(_time.GetUtcNow().AddMinutes(10));
    }

    [Fact]
    public void Time_per_token_is_smoothed_across_calls()
    {
        var board = new TargetHealthBoard(_time);

        board.RecordLatency("a", 1_000, 100);
        board.For("a").MsPerToken.ShouldBe(10);

        board.RecordLatency("a", 2_000, 100);
        board.For("a").MsPerToken.ShouldBe(13, tolerance: 1e-9);
        board.For("unmeasured").MsPerToken.ShouldBe(double.NaN);
    }
}
