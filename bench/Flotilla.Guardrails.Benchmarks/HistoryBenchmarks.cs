using BenchmarkDotNet.Attributes;
using Flotilla.Fleet;

namespace Flotilla.Guardrails.Benchmarks;

/// <summary>
/// A loop's 60-turn history (~70 KB) through the seed fleet's input guardrail (prompt-injection, block) and its output
/// guardrails as validators, as it is resent on every step: remembered (the same pipeline has seen every message) and
/// fresh (a new pipeline, so every message is scanned).
/// </summary>
[MemoryDiagnoser]
public class HistoryBenchmarks
{
    private static readonly SourceLocation Here = new("bench", 1, 1);
    private readonly GuardrailContext _context = new("bench-agent", "bench-team");
    private GuardrailRef[] _rails = null!;
    private GuardrailPipeline _remembering = null!;
    private string[] _history = null!;

    [GlobalSetup]
    public void Setup()
    {
        _history = [.. Enumerable.Range(0, 60).Select(t => $"step {t}: " + Messages.Ordinary[(t * 37 % 2000)..][..1150])];
        _rails = [Rail("prompt-injection"), Rail("secrets-detection"), Rail("pii")];
        _remembering = new GuardrailPipeline(GuardrailHook.LlmInput, _rails);
        Sync(_remembering.RunAsync(_history, _context));
    }

    private static T Sync<T>(ValueTask<T> task) => task.IsCompletedSuccessfully ? task.Result : throw new InvalidOperationException("expected a synchronous completion");

    private static GuardrailRef Rail(string type) => new(type, type, GuardrailAction.Block, null, [], null, 1000, false, Here);

    [Benchmark(Description = "60-turn history, every scan remembered")]
    public GuardrailDecision Remembered() => Sync(_remembering.RunAsync(_history, _context)).Decision;

    [Benchmark(Baseline = true, Description = "60-turn history, nothing remembered")]
    public GuardrailDecision Fresh() => Sync(new GuardrailPipeline(GuardrailHook.LlmInput, _rails).RunAsync(_history, _context)).Decision;
}
