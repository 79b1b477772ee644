using System.Security.Cryptography;
using System.Text;
using Flotilla.Gateway.Tests.Fakes;
using Flotilla.Storage.Keys;
using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Identity;

public sealed class AgentKeyRingTests
{
    private readonly InMemoryAgentKeyStore _store = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 3, 1, 12, 0, 0, TimeSpan.Zero));

    private static string Sha256Hex(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_issued_key_starts_with_flt_and_resolves_to_its_agent()
    {
        var ring = new AgentKeyRing(_store, _time);

        var (key, record) = await ring.IssueAsync("researcher", Cancel);

        key.ShouldStartWith("flt_");
        key.Length.ShouldBe(4 + 32); // 24 random bytes in unpadded base64url
        key[4..].ShouldAllBe(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_');
        ring.TryResolve(key, out var resolved).ShouldBeTrue();
        resolved.ShouldBe(record);
        resolved.Agent.ShouldBe("researcher");
        record.CreatedAt.ShouldBe(_time.GetUtcNow());
        record.RevokedAt.ShouldBeNull();
    }

    [Fact]
    public async Task Keys_of_different_agents_resolve_to_their_own_agent()
    {
        var ring = new AgentKeyRing(_store, _time);
        var (first, _) = await ring.IssueAsync("one", Cancel);
        var (second, _) = await ring.IssueAsync("two", Cancel);

        first.ShouldNotBe(second);
        ring.TryResolve(first, out var a).ShouldBeTrue();
        ring.TryResolve(second, out var b).ShouldBeTrue();
        (a.Agent, b.Agent).ShouldBe(("one", "two"));
    }

    [Fact]
    public async Task The_store_holds_the_hash_of_the_key_and_never_the_key()
    {
        var ring = new AgentKeyRing(_store, _time);

        var (key, _) = await ring.IssueAsync("researcher", Cancel);

        var stored = _store.Records.ShouldHaveSingleItem();
        stored.Hash.ShouldBe(Sha256Hex(key));
        stored.Agent.ShouldBe("researcher");
        stored.Prefix.ShouldBe(key[..10]);
        stored.ToString().ShouldNotContain(key[10..]);
        new[] { stored.Id, stored.Agent, stored.Hash, stored.Prefix }.ShouldNotContain(key);
    }

    [Fact]
    public async Task A_similar_key_does_not_resolve()
    {
        var ring = new AgentKeyRing(_store, _time);
        var (key, _) = await ring.IssueAsync("researcher", Cancel);

        ring.TryResolve(key[..^1] + (key[^1] == 'A' ? 'B' : 'A'), out _).ShouldBeFalse();
        ring.TryResolve(key + "x", out _).ShouldBeFalse();
        ring.TryResolve(key.ToUpperInvariant(), out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_revoked_key_stops_resolving_and_is_marked_in_the_store()
    {
        var ring = new AgentKeyRing(_store, _time);
        var (revoked, record) = await ring.IssueAsync("researcher", Cancel);
        var (kept, _) = await ring.IssueAsync("researcher", Cancel);
        _time.Advance(TimeSpan.FromHours(1));

        (await ring.RevokeAsync(record.Id, Cancel)).ShouldBeTrue();

        ring.TryResolve(revoked, out _).ShouldBeFalse();
        ring.TryResolve(kept, out _).ShouldBeTrue();
        _store.Records.Single(r => r.Id == record.Id).RevokedAt.ShouldBe(_time.GetUtcNow());
        ring.List().Select(r => r.Id).ShouldNotContain(record.Id);
        (await ring.RevokeAsync("key_unknown", Cancel)).ShouldBeFalse();
    }

    [Fact]
    public async Task Loading_from_the_store_restores_live_keys_but_not_revoked_ones()
    {
        var first = new AgentKeyRing(_store, _time);
        var (live, _) = await first.IssueAsync("a", Cancel);
        var (revoked, record) = await first.IssueAsync("b", Cancel);
        await first.RevokeAsync(record.Id, Cancel);

        var restarted = new AgentKeyRing(_store, _time);
        restarted.IsEmpty.ShouldBeTrue();
        await restarted.LoadAsync(Cancel);

        restarted.TryResolve(live, out var resolved).ShouldBeTrue();
        resolved.Agent.ShouldBe("a");
        restarted.TryResolve(revoked, out _).ShouldBeFalse();
    }

    [Theory]
    [InlineData("sk_live_0123456789")]
    [InlineData("FLT_0123456789")]
    [InlineData("flt0123456789")]
    [InlineData(" flt_0123456789")]
    public async Task A_key_without_the_flt_prefix_is_rejected_even_if_its_hash_is_known(string presented)
    {
        await _store.AddAsync(new AgentKeyRecord("key_1", "a", Sha256Hex(presented), presented[..4], _time.GetUtcNow(), null), Cancel);
        var ring = new AgentKeyRing(_store, _time);
        await ring.LoadAsync(Cancel);

        ring.TryResolve(presented, out _).ShouldBeFalse();
    }

    [Fact]
    public async Task A_key_longer_than_256_characters_is_rejected_even_if_its_hash_is_known()
    {
        var longest = "flt_" + new string('a', 252);
        var tooLong = "flt_" + new string('a', 253);
        await _store.AddAsync(new AgentKeyRecord("key_1", "a", Sha256Hex(longest), "flt_aaaaaa", _time.GetUtcNow(), null), Cancel);
        await _store.AddAsync(new AgentKeyRecord("key_2", "b", Sha256Hex(tooLong), "flt_aaaaaa", _time.GetUtcNow(), null), Cancel);
        var ring = new AgentKeyRing(_store, _time);
        await ring.LoadAsync(Cancel);

        ring.TryResolve(longest, out var resolved).ShouldBeTrue();
        resolved.Agent.ShouldBe("a");
        ring.TryResolve(tooLong, out _).ShouldBeFalse();
    }

    [Fact]
    public void Nothing_resolves_in_an_empty_ring()
    {
        var ring = new AgentKeyRing(_store, _time);

        ring.IsEmpty.ShouldBeTrue();
        ring.TryResolve("flt_" + new string('x', 32), out _).ShouldBeFalse();
        ring.TryResolve("", out _).ShouldBeFalse();
    }
}
