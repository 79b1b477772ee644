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
    private JsonObject? _template;
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
        var node = JsonNode.Parse(chunk.Span) as JsonObject;
        var choice = node?["choices"] is JsonArray { Count: > 0 } choices ? choices[0] as JsonObject : null;
        var delta = choice?["delta"] as JsonObject;
        if (delta?["content"] is JsonValue contentValue && contentValue.TryGetValue<string>(out var content))
        {
            _template ??= node!.DeepClone().AsObject();
            var release = await guard.AppendAsync(content, cancellationToken);
            Throw(release);
            delta["content"] = release.Text;
            var onlyContent = delta.Count == 1;
            var finishes = choice!["finish_reason"] is JsonValue f && f.GetValueKind() == JsonValueKind.String;
            if (finishes)
            {
                await FlushHeldAsync(cancellationToken);
            }

            if (release.Text.Length == 0 && onlyContent && !finishes)
            {
                return; // Nothing to send yet: the guard is holding this text back.
            }

            _ready.Enqueue(Serialize(node!));
            return;
        }

        if (choice?["finish_reason"] is JsonValue finish && finish.GetValueKind() == JsonValueKind.String)
        {
            await FlushHeldAsync(cancellationToken);
        }
        else if (choice is null)
        {
            // A usage-only chunk closes the text too.
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
            var chunk = _template.DeepClone().AsObject();
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
