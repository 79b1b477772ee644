using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Flotilla.Storage.Keys;

namespace Flotilla.Governance.Identity;

/// <summary>
/// Agent keys, held in memory as SHA-256 hashes only (keys are 192-bit random, so a fast hash is the right tool; a slow
/// password hash would only cost latency). The durable copy is the key store; this is the hot-path lookup.
/// </summary>
public sealed class AgentKeyRing(IAgentKeyStore store, TimeProvider time)
{
    public const string KeyPrefix = "flt_";
    private readonly ConcurrentDictionary<KeyHash, AgentKeyRecord> _byHash = new();

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        foreach (var record in await store.ListAsync(cancellationToken))
        {
            if (record.RevokedAt is null)
            {
                _byHash[KeyHash.FromHex(record.Hash)] = record;
            }
        }
    }

    public bool IsEmpty => _byHash.IsEmpty;

    /// <summary>Issues a new key for <paramref name="agent"/>; the plain key is returned once and never stored.</summary>
    public async Task<(string Key, AgentKeyRecord Record)> IssueAsync(string agent, CancellationToken cancellationToken)
    {
        var key = KeyPrefix + Base64Url(RandomNumberGenerator.GetBytes(24));
        var hash = KeyHash.Of(key);
        var record = new AgentKeyRecord("key_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), agent, hash.ToHex(),
            key[..(KeyPrefix.Length + 6)], time.GetUtcNow(), null);
        await store.AddAsync(record, cancellationToken);
        _byHash[hash] = record;
        return (key, record);
    }

    public async Task<bool> RevokeAsync(string id, CancellationToken cancellationToken)
    {
        var revoked = await store.RevokeAsync(id, time.GetUtcNow(), cancellationToken);
        foreach (var (hash, record) in _byHash)
        {
            if (record.Id == id)
            {
                _byHash.TryRemove(hash, out _);
            }
        }

        return revoked;
    }

    public IReadOnlyList<AgentKeyRecord> List() => _byHash.Values.OrderBy(r => r.CreatedAt).ToList();

    /// <summary>Finds the agent a presented key belongs to, without allocating.</summary>
    public bool TryResolve(ReadOnlySpan<char> presented, out AgentKeyRecord record)
    {
        record = null!;
        if (!presented.StartsWith(KeyPrefix, StringComparison.Ordinal) || presented.Length > 256)
        {
            return false;
        }

        return _byHash.TryGetValue(KeyHash.Of(presented), out record!);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>A SHA-256 digest as four words, so it can key a dictionary without a string.</summary>
    internal readonly record struct KeyHash(ulong A, ulong B, ulong C, ulong D)
    {
        public static KeyHash Of(ReadOnlySpan<char> key)
        {
            Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(key.Length)];
            var length = Encoding.UTF8.GetBytes(key, utf8);
            Span<byte> digest = stackalloc byte[32];
            SHA256.HashData(utf8[..length], digest);
            return FromBytes(digest);
        }

        public static KeyHash FromHex(string hex) => FromBytes(Convert.FromHexString(hex));

        private static KeyHash FromBytes(ReadOnlySpan<byte> digest) => new(
            BinaryPrimitives.ReadUInt64BigEndian(digest),
            BinaryPrimitives.ReadUInt64BigEndian(digest[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(digest[16..]),
            BinaryPrimitives.ReadUInt64BigEndian(digest[24..]));

        public string ToHex()
        {
            Span<byte> digest = stackalloc byte[32];
            BinaryPrimitives.WriteUInt64BigEndian(digest, A);
            BinaryPrimitives.WriteUInt64BigEndian(digest[8..], B);
            BinaryPrimitives.WriteUInt64BigEndian(digest[16..], C);
            BinaryPrimitives.WriteUInt64BigEndian(digest[24..], D);
            return Convert.ToHexStringLower(digest);
        }
    }
}
