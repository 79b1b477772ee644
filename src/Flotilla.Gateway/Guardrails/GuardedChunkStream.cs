using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;
using Flotilla.Guardrails;

namespace Flotilla.Gateway.Guardrails;

/// <summary>A stream stopped by an output guardrail; the caller gets an error event, never the text that fired it.</summary>
internal sealed class GuardrailBlockedException(string reason) : Exception(reason);

/// <summary>
/// Puts <c>llm_output</c> guardrails on a streamed answer: each chunk's text goes through a <see cref="StreamingGuard"/>,
/// which holds back a window so a secret split across chunks is caught whole, and chunks carry only what the guard
/// releases (redacted when a redact guardrail fired). Chunks without text (role, tool calls, finish, usage) pass as they are,
/// after any text still held back. Tool-call arguments in streams are not scanned.
/// </summary>
internal sealed class GuardedChunkStream(IChunkStream inner, StreamingGuard guard) : IChunkStream
{
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly Queue<byte[]> _ready = new();
    private bool _primed = true;
    private bool _done;
    /// <summary>The stream's first chunk with text: the shape of the chunk that carries what is still held at the end.</summary>
    private byte[]? _template;
    private bool _flushed;

    public StreamingGuard Guard => guard;

    public ReadOnlyMemory<byte> Current { get; private set; }

    public TokenUsage Usage => inner.Usage;

    /// <summary>Guards the chunk the dispatcher already read (the stream's first) before anything else.</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (_ready.Count == 0)
        {
            if (_done)
            {
                return false;
            }

            var has = _primed || await inner.ReadAsync(cancellationToken);
            _primed = false;
            if (!has)
            {
                _done = true;
                await FlushHeldAsync(cancellationToken);
                continue;
            }

            await ProcessAsync(inner.Current, cancellationToken);
        }

        Current = _ready.Dequeue();
        return true;
    }

    private async ValueTask ProcessAsync(ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken)
    {
        var text = ChunkText.Read(chunk.Span);
        if (text.Content is { } content)
        {
            _template ??= chunk.ToArray();
            var release = await guard.AppendAsync(content, cancellationToken);
            Throw(release);
            if (text.Finishes)
            {
                await FlushHeldAsync(cancellationToken);
            }

            if (release.Text.Length == 0 && text.OnlyContent && !text.Finishes)
            {
                return; // Nothing to send yet: the guard is holding this text back.
            }

            _ready.Enqueue(text.WithContent(chunk.Span, release.Text));
            return;
        }

        if (text.Finishes || !text.HasChoice)
        {
            // A finish, or a usage-only chunk, closes the text.
            await FlushHeldAsync(cancellationToken);
        }

        _ready.Enqueue(chunk.ToArray());
    }

    private async ValueTask FlushHeldAsync(CancellationToken cancellationToken)
    {
        if (_flushed)
        {
            return;
        }

        _flushed = true;
        var release = await guard.CompleteAsync(cancellationToken);
        Throw(release);
        if (release.Text.Length > 0 && _template is not null)
        {
            var chunk = JsonNode.Parse(_template)!.AsObject();
            var choice = chunk["choices"]![0]!.AsObject();
            choice["delta"] = new JsonObject { ["content"] = release.Text };
            choice["finish_reason"] = null;
            _ready.Enqueue(Serialize(chunk));
        }
    }

    private static void Throw(StreamingRelease release)
    {
        if (release.Block is { } block)
        {
            throw new GuardrailBlockedException(block.Reason ?? "blocked by an output guardrail");
        }
    }

    private static byte[] Serialize(JsonObject node) => Encoding.UTF8.GetBytes(node.ToJsonString(Relaxed));

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>
/// What a guard needs from one <c>chat.completion.chunk</c>, read without building a DOM: the first choice's
/// <c>delta.content</c> (and where its JSON string sits in the chunk), whether the delta holds anything else, and whether
/// the choice finishes.
/// </summary>
internal readonly record struct ChunkText(bool HasChoice, string? Content, int ContentStart, int ContentLength, bool OnlyContent, bool Finishes)
{
    private static readonly System.Text.Encodings.Web.JavaScriptEncoder Relaxed = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    public static ChunkText Read(ReadOnlySpan<byte> chunk)
    {
        var reader = new Utf8JsonReader(chunk);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("a stream chunk is not a JSON object");
        }

        var text = default(ChunkText);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isChoices = reader.ValueTextEquals("choices"u8);
            reader.Read();
            if (isChoices && reader.TokenType == JsonTokenType.StartArray)
            {
                if (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        text = ReadChoice(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }

                    // Past the other choices (the guard reads the first, as the rest of the gateway does).
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                reader.Skip();
            }
        }

        return text;
    }

    private static ChunkText ReadChoice(ref Utf8JsonReader reader)
    {
        string? content = null;
        int start = 0, length = 0, fields = 0;
        var finishes = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    fields++;
                    var isContent = reader.ValueTextEquals("content"u8);
                    reader.Read();
                    if (isContent && reader.TokenType == JsonTokenType.String)
                    {
                        start = (int)reader.TokenStartIndex + 1;
                        length = reader.ValueSpan.Length;
                        content = reader.GetString();
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else
            {
                var isFinish = reader.ValueTextEquals("finish_reason"u8);
                reader.Read();
                finishes |= isFinish && reader.TokenType == JsonTokenType.String;
                reader.Skip();
            }
        }

        return new ChunkText(true, content, start, length, fields == 1 && content is not null, finishes);
    }

    /// <summary>The chunk with its <c>delta.content</c> replaced by <paramref name="content"/>; every other byte as the upstream sent it.</summary>
    public byte[] WithContent(ReadOnlySpan<byte> chunk, string content)
    {
        var encoded = JsonEncodedText.Encode(content, Relaxed).EncodedUtf8Bytes;
        var result = new byte[chunk.Length - ContentLength + encoded.Length];
        chunk[..ContentStart].CopyTo(result);
        encoded.CopyTo(result.AsSpan(ContentStart));
        chunk[(ContentStart + ContentLength)..].CopyTo(result.AsSpan(ContentStart + encoded.Length));
        return result;
    }
}
