using BenchmarkDotNet.Attributes;
using Flotilla.Fleet;
using Flotilla.Guardrails.Pii;
using Flotilla.Guardrails.PromptInjection;
using Flotilla.Guardrails.Secrets;

namespace Flotilla.Guardrails.Benchmarks;

/// <summary>Each built-in detector and whole pipelines on a 4 KB message (nothing to find; two credentials) and on a 320-character turn.</summary>
[MemoryDiagnoser]
[MinColumn]
[MedianColumn]
public class GuardrailBenchmarks
{
    private static readonly SourceLocation Here = new("bench", 1, 1);
    private readonly GuardrailContext _context = new("bench-agent", "bench-team");
    private GuardrailPipeline _blockAll = null!;
    private GuardrailPipeline _redactAll = null!;
    private string[] _texts = null!;
    private string _text = null!;

    [Params("ordinary", "secret", "turn")]
    public string Message { get; set; } = "ordinary";

    [GlobalSetup]
    public void Setup()
    {
        _text = Message switch { "secret" => Messages.WithSecret, "turn" => Messages.Turn, _ => Messages.Ordinary };
        _texts = [_text];
        _blockAll = new GuardrailPipeline(GuardrailHook.LlmOutput, [Rail("prompt-injection", GuardrailAction.Block), Rail("secrets-detection", GuardrailAction.Block), Rail("pii", GuardrailAction.Block)]);
        _redactAll = new GuardrailPipeline(GuardrailHook.LlmOutput, [Rail("prompt-injection", GuardrailAction.Redact), Rail("secrets-detection", GuardrailAction.Redact), Rail("pii", GuardrailAction.Redact)]);
    }

    // Local guardrails complete synchronously; measuring them through an await would measure the await.
    private static T Sync<T>(ValueTask<T> task) => task.IsCompletedSuccessfully ? task.Result : throw new InvalidOperationException("expected a synchronous completion");

    private static GuardrailRef Rail(string type, GuardrailAction action) => new(type, type, action, null, [], null, 1000, false, Here);

    [Benchmark]
    public InjectionAnalysis PromptInjection() => PromptInjectionDetector.Analyze(_text);

    [Benchmark]
    public int Secrets() => SecretDetector.Find(_text).Count;

    [Benchmark]
    public int Pii() => PiiDetector.Find(_text).Count;

    [Benchmark]
    public GuardrailDecision PipelineBlock() => Sync(_blockAll.RunAsync(_texts, _context)).Decision;

    [Benchmark]
    public GuardrailDecision PipelineRedact() => Sync(_redactAll.RunAsync(_texts, _context)).Decision;

    [Benchmark]
    public int StreamingRedact()
    {
        var guard = _redactAll.CreateStreamingGuard(_context);
        var released = 0;
        for (var at = 0; at < _text.Length; at += 64)
        {
            released += Sync(guard.AppendAsync(_text.Substring(at, Math.Min(64, _text.Length - at)))).Text.Length;
        }

        return released + Sync(guard.CompleteAsync()).Text.Length;
    }
}
