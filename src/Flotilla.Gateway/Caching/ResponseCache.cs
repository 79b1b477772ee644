using System.IO.Hashing;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using Flotilla.Fleet;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Caching;

/// <summary>A cached answer: the OpenAI <c>chat.completion</c> JSON and what it was for.</summary>
internal sealed record CachedAnswer(byte[] Completion, string Model, TokenUsage Usage, DateTimeOffset StoredAt);

/// <summary>
/// Cached answers by namespace. They outlive any one version of the fleet (an apply keeps them). In memory here; a shared
/// store (Redis) can implement the same members for several replicas.
/// </summary>
internal interface IResponseCache
{
    CachingConfig Config { get; }

    int Count { get; }

    CachedAnswer? GetExact(string space, ulong hash);

    CachedAnswer? GetSimilar(string space, float[] vector);

    void Put(string space, ulong hash, float[]? vector, CachedAnswer answer);
}

/// <summary>
/// Answers kept per namespace (agent, team, or one shared space), bounded in entries with least-recently-used
/// eviction and a time to live. <c>exact</c> matches a hash of the normalised request; <c>semantic</c> matches the
/// nearest stored conversation embedding at or above the similarity threshold. A namespace never sees another's entries.
/// </summary>
internal sealed class ResponseCache(CachingConfig config, TimeProvider time) : IResponseCache
{
    private volatile CachingConfig _config = config;

    /// <summary>Embeddings are projected to this many dimensions so the index stays small and fast whatever the model.</summary>
    public const int IndexDimensions = 256;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Space> _spaces = new(StringComparer.Ordinal);
    private long _clock;
    private int _total;

    /// <summary>The fleet's caching settings; an apply replaces them and keeps the entries.</summary>
    public CachingConfig Config
    {
        get => _config;
        set => _config = value;
    }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    public CachedAnswer? GetExact(string space, ulong hash) => Find(space, s => s.FindExact(hash));

    public CachedAnswer? GetSimilar(string space, float[] vector) => Find(space, s => s.FindSimilar(vector, (float)_config.SimilarityThreshold));

    public void Put(string space, ulong hash, float[]? vector, CachedAnswer answer)
    {
        lock (_lock)
        {
            if (!_spaces.TryGetValue(space, out var s))
            {
                _spaces[space] = s = new Space();
            }

            var before = s.Count;
            s.Add(hash, vector, answer, ++_clock);
            _total += s.Count - before;
            // Bound the whole cache: evict the least recently used entry, whichever space holds it.
            while (_total > _config.MaxEntries)
            {
                var (victim, index, oldest) = ((Space?)null, -1, long.MaxValue);
                foreach (var candidate in _spaces.Values)
                {
                    var (i, used) = candidate.Oldest();
                    if (i >= 0 && used < oldest)
                    {
                        (victim, index, oldest) = (candidate, i, used);
                    }
                }

                victim!.Remove(index);
                _total--;
            }
        }
    }

    private CachedAnswer? Find(string space, Func<Space, int> search)
    {
        lock (_lock)
        {
            if (!_spaces.TryGetValue(space, out var s))
            {
                return null;
            }

            var index = search(s);
            if (index < 0)
            {
                return null;
            }

            var answer = s.Answer(index);
            if (time.GetUtcNow() - answer.StoredAt > _config.Ttl)
            {
                s.Remove(index);
                _total--;
                return null;
            }

            s.Touch(index, ++_clock);
            return answer;
        }
    }

    /// <summary>
    /// The exact key: the request with fields that do not change the answer removed (stream, stream_options, user,
    /// metadata, n=1…) and object keys sorted, hashed with XXH128 folded to 64 bits, plus the model asked for.
    /// </summary>
    public static ulong ExactKey(string model, JsonElement request) => Key(model, request, withMessages: true);

    /// <summary>
    /// For the semantic cache: the exact key without the conversation. Similar conversations may share an answer only when
    /// this matches too: another model's answer, or a text answer to a request that offers tools, is not the answer asked for.
    /// </summary>
    public static ulong ParametersKey(string model, JsonElement request) => Key(model, request, withMessages: false);

    private static ulong Key(string model, JsonElement request, bool withMessages)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("$model", model);
            foreach (var property in request.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                if (property.Name is "model" or "stream" or "stream_options" or "user" or "metadata" or "store"
                    || (!withMessages && property.Name == "messages"))
                {
                    continue;
                }

                writer.WritePropertyName(property.Name);
                Flotilla.Governance.Json.CanonicalJson.Write(writer, property.Value, trimStrings: true);
            }

            writer.WriteEndObject();
        }

        return XxHash3.HashToUInt64(buffer.WrittenSpan);
    }

    /// <summary>The text a semantic cache embeds: each message as "role: content", tools' names appended.</summary>
    public static string ConversationText(JsonElement request)
    {
        var text = new StringBuilder();
        if (request.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                text.Append(message.TryGetProperty("role", out var role) ? role.GetString() : "user").Append(": ");
                if (message.TryGetProperty("content", out var content))
                {
                    if (content.ValueKind == JsonValueKind.String)
                    {
                        text.Append(content.GetString());
                    }
                    else if (content.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var part in content.EnumerateArray())
                        {
                            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var t))
                            {
                                text.Append(t.GetString()).Append(' ');
                            }
                        }
                    }
                }

                if (message.TryGetProperty("tool_calls", out var calls))
                {
                    text.Append(' ').Append(calls.GetRawText());
                }

                text.Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// Reduces an embedding to <see cref="IndexDimensions"/> with a fixed random ±1 projection (distances are kept
    /// approximately, by Johnson–Lindenstrauss) and normalises it, so similarity is a dot product.
    /// </summary>
    public static float[] Project(ReadOnlySpan<float> embedding)
    {
        var result = new float[IndexDimensions];
        if (embedding.Length <= IndexDimensions)
        {
            embedding.CopyTo(result);
        }
        else
        {
            for (var i = 0; i < embedding.Length; i++)
            {
                var value = embedding[i];
                // Each input dimension adds to four output dimensions with signs from a fixed hash.
                var h = (uint)i * 2654435761u;
                for (var k = 0; k < 4; k++)
                {
                    h ^= h >> 13;
                    h *= 0x5bd1e995;
                    result[h % IndexDimensions] += (h & 0x80000000) == 0 ? value : -value;
                }
            }
        }

        var norm = TensorPrimitives.Norm(result);
        if (norm > 0)
        {
            TensorPrimitives.Divide(result, norm, result);
        }

        return result;
    }

    /// <summary>One namespace: entries in slots, vectors contiguous for a fast scan, an LRU clock per slot.</summary>
    private sealed class Space
    {
        private readonly Dictionary<ulong, int> _byHash = [];
        private readonly List<CachedAnswer?> _answers = [];
        private readonly List<ulong> _hashes = [];
        private readonly List<long> _used = [];
        private readonly Stack<int> _free = new();
        private float[] _vectors = new float[IndexDimensions * 16];
        private readonly List<bool> _hasVector = [];

        public int Count => _byHash.Count;

        public int FindExact(ulong hash) => _byHash.TryGetValue(hash, out var index) ? index : -1;

        public int FindSimilar(float[] vector, float threshold)
        {
            var best = -1;
            var bestScore = threshold;
            var span = _vectors.AsSpan();
            for (var i = 0; i < _answers.Count; i++)
            {
                if (!_hasVector[i] || _answers[i] is null)
                {
                    continue;
                }

                var score = TensorPrimitives.Dot(span.Slice(i * IndexDimensions, IndexDimensions), vector);
                if (score >= bestScore)
                {
                    bestScore = score;
                    best = i;
                }
            }

            return best;
        }

        public CachedAnswer Answer(int index) => _answers[index]!;

        public void Touch(int index, long clock) => _used[index] = clock;

        public void Add(ulong hash, float[]? vector, CachedAnswer answer, long clock)
        {
            if (_byHash.TryGetValue(hash, out var existing))
            {
                _answers[existing] = answer;
                _used[existing] = clock;
                return;
            }

            int index;
            if (_free.Count > 0)
            {
                index = _free.Pop();
                _answers[index] = answer;
                _hashes[index] = hash;
                _used[index] = clock;
                _hasVector[index] = vector is not null;
            }
            else
            {
                index = _answers.Count;
                _answers.Add(answer);
                _hashes.Add(hash);
                _used.Add(clock);
                _hasVector.Add(vector is not null);
                if ((index + 1) * IndexDimensions > _vectors.Length)
                {
                    Array.Resize(ref _vectors, _vectors.Length * 2);
                }
            }

            if (vector is not null)
            {
                vector.AsSpan().CopyTo(_vectors.AsSpan(index * IndexDimensions, IndexDimensions));
            }

            _byHash[hash] = index;
        }

        /// <summary>The least recently used entry and when it was used; index -1 when the space is empty.</summary>
        public (int Index, long Used) Oldest()
        {
            var oldest = -1;
            for (var i = 0; i < _answers.Count; i++)
            {
                if (_answers[i] is not null && (oldest < 0 || _used[i] < _used[oldest]))
                {
                    oldest = i;
                }
            }

            return (oldest, oldest < 0 ? long.MaxValue : _used[oldest]);
        }

        public void Remove(int index)
        {
            _byHash.Remove(_hashes[index]);
            _answers[index] = null;
            _hasVector[index] = false;
            _free.Push(index);
        }
    }
}
