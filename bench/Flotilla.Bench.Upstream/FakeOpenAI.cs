using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Bench.Upstream;

/// <summary>
/// Answers <c>POST /v1/chat/completions</c> with a fixed <c>chat.completion</c> (usage included), or, when the body has
/// <c>"stream": true</c>, with a few <c>chat.completion.chunk</c> events, a usage chunk and <c>[DONE]</c>; and
/// <c>GET /hello</c> with "Hello, World!" (the Kestrel ceiling). Every answer is bytes computed once at start, so an
/// instant answer allocates nothing of its own per request.
/// </summary>
internal sealed class FakeOpenAI
{
    private const string Id = "chatcmpl-flotilla-bench";
    private const long Created = 1_767_225_600;
    private const string Model = "bench-model";
    private static readonly byte[] Hello = "Hello, World!"u8.ToArray();
    private static readonly byte[] NotFound = """{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}"""u8.ToArray();
    private static readonly string[] Words =
        ["The", " integration", " tests", " timed", " out", " waiting", " for", " Postgres;", " restart", " the", " database",
         " container", " and", " rerun", " the", " step", " with", " a", " longer", " health", " check."];

    private readonly UpstreamOptions _options;
    private readonly byte[] _completion;
    private readonly byte[][] _chunks;
    private readonly byte[] _wholeStream;

    public FakeOpenAI(UpstreamOptions options)
    {
        _options = options;
        var words = Enumerable.Range(0, options.Chunks).Select(i => Words[i % Words.Length]).ToArray();
        var text = string.Concat(words);
        _completion = Encoding.UTF8.GetBytes(
            $$$"""{"id":"{{{Id}}}","object":"chat.completion","created":{{{Created}}},"model":"{{{Model}}}","choices":[{"index":0,"message":{"role":"assistant","content":"{{{text}}}","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":231,"completion_tokens":{{{options.Chunks}}},"total_tokens":{{{231 + options.Chunks}}}},"system_fingerprint":"fp_bench"}""");

        var chunks = new List<string> { Chunk("""{"role":"assistant","content":""}""", "null") };
        chunks.AddRange(words.Select(w => Chunk($$"""{"content":"{{w}}"}""", "null")));
        chunks.Add(Chunk("{}", "\"stop\""));
        chunks.Add($$$"""{"id":"{{{Id}}}","object":"chat.completion.chunk","created":{{{Created}}},"model":"{{{Model}}}","choices":[],"usage":{"prompt_tokens":231,"completion_tokens":{{{options.Chunks}}},"total_tokens":{{{231 + options.Chunks}}}}}""");
        chunks.Add("[DONE]");
        _chunks = chunks.Select(c => Encoding.UTF8.GetBytes($"data: {c}\n\n")).ToArray();
        _wholeStream = _chunks.SelectMany(c => c).ToArray();

        static string Chunk(string delta, string finish) =>
            $$$"""{"id":"{{{Id}}}","object":"chat.completion.chunk","created":{{{Created}}},"model":"{{{Model}}}","choices":[{"index":0,"delta":{{{delta}}},"logprobs":null,"finish_reason":{{{finish}}}}]}""";
    }

    public Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value;
        if (path == "/v1/chat/completions" && HttpMethods.IsPost(request.Method))
        {
            return ChatAsync(context);
        }

        if (path == "/hello" && HttpMethods.IsGet(request.Method))
        {
            return WriteAsync(context.Response, "text/plain", Hello);
        }

        context.Response.StatusCode = StatusCodes.Status404NotFound;
        return WriteAsync(context.Response, "application/json", NotFound);
    }

    private async Task ChatAsync(HttpContext context)
    {
        var stream = await ReadStreamFlagAsync(context.Request.BodyReader, context.RequestAborted);
        if (_options.DelayMs > 0)
        {
            await Task.Delay(_options.DelayMs, context.RequestAborted);
        }

        var response = context.Response;
        if (!stream)
        {
            await WriteAsync(response, "application/json", _completion);
            return;
        }

        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        if (_options.ChunkDelayMs == 0)
        {
            await response.BodyWriter.WriteAsync(_wholeStream, context.RequestAborted);
            return;
        }

        for (var i = 0; i < _chunks.Length; i++)
        {
            if (i > 0)
            {
                await Task.Delay(_options.ChunkDelayMs, context.RequestAborted);
            }

            await response.BodyWriter.WriteAsync(_chunks[i], context.RequestAborted);
        }
    }

    private static async Task WriteAsync(HttpResponse response, string contentType, byte[] body)
    {
        response.ContentType = contentType;
        response.ContentLength = body.Length;
        await response.BodyWriter.WriteAsync(body);
    }

    /// <summary>Reads the whole body and says whether it asks for a stream; no copy unless the body spans segments.</summary>
    private static async ValueTask<bool> ReadStreamFlagAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (result.IsCompleted)
            {
                var stream = AsksForStream(buffer);
                reader.AdvanceTo(buffer.End);
                return stream;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool AsksForStream(ReadOnlySequence<byte> body)
    {
        if (body.IsSingleSegment)
        {
            return AsksForStream(body.FirstSpan);
        }

        var length = checked((int)body.Length);
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            body.CopyTo(copy);
            return AsksForStream(copy.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>
    /// True when the body has <c>"stream": true</c>. A scan, not a parse: <c>"stream"</c> with its closing quote never matches
    /// <c>stream_options</c>, and inside a JSON string the quotes would be escaped.
    /// </summary>
    internal static bool AsksForStream(ReadOnlySpan<byte> body)
    {
        ReadOnlySpan<byte> key = "\"stream\""u8;
        ReadOnlySpan<byte> space = " \t\r\n"u8;
        int at;
        while ((at = body.IndexOf(key)) >= 0)
        {
            body = body[(at + key.Length)..];
            var rest = body.TrimStart(space);
            if (!rest.IsEmpty && rest[0] == (byte)':')
            {
                return rest[1..].TrimStart(space).StartsWith("true"u8);
            }
        }

        return false;
    }
}
