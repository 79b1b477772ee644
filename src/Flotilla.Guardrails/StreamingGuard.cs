using System.Text;
using Flotilla.Fleet;
using Flotilla.Guardrails.Text;

namespace Flotilla.Guardrails;

/// <summary>What a <see cref="StreamingGuard"/> lets through after a delta or at the end.</summary>
/// <param name="Text">Text safe to send on now (redacted where redact guardrails found something); often empty.</param>
/// <param name="Block">Set when a block guardrail fired: stop the stream and report its reason. Text released before stays released (it was clean).</param>
public readonly record struct StreamingRelease(string Text, GuardrailOutcome? Block)
{
    public bool IsBlocked => Block is not null;
}

/// <summary>
/// Guards one streamed text (a model's answer on <c>llm_output</c>) as it arrives. Deltas are buffered and scanned every
/// <see cref="ScanEvery"/> characters; each scan releases all but what must stay pending so that a finding split across
/// deltas is whole in some scan before any part of it leaves. When every guardrail of the hook finds tokens or runs of
/// suspicious words (secrets, personal data), that is the last word and the suspicious words before it
/// (<see cref="StreamTail"/>), so prose leaves a few words behind the model; otherwise it is the last
/// <see cref="HoldBack"/> characters. Findings that may still be growing are held until they end or the stream does.
/// Block guardrails stop the stream when they fire; redact guardrails change the released text; audit ones are counted.
/// <para>
/// Prompt-injection scores are computed per scanned window, not over the whole answer. A webhook guardrail on the hook
/// turns streaming off: the guard then holds the whole text and runs the pipeline once at <see cref="CompleteAsync"/>.
/// One guard per stream; not thread-safe.
/// </para>
/// </summary>
public sealed class StreamingGuard
{
    /// <summary>Default characters held back: longer than any single credential the detectors know except PEM keys. 256.</summary>
    public const int DefaultHoldBack = 256;

    /// <summary>Pending text beyond which the guard releases regardless of unfinished findings. 32,768 characters.</summary>
    public const int MaxPending = 32 * 1024;

    /// <summary>Text kept before an unfinished finding, so rules that need context (a key name before a value) still see it. 128 characters.</summary>
    private const int ContextMargin = 128;

    /// <summary>New characters between two scans when holding back by word: 16, two or three words of prose.</summary>
    private const int WordScanEvery = 16;

    private readonly GuardrailPipeline _pipeline;
    private readonly GuardrailContext _context;
    private readonly StringBuilder _pending = new();
    private readonly Aggregate[] _aggregates;
    private readonly bool _incremental;

    /// <summary>Every guardrail holds back by word (<see cref="LocalGuardrail.HoldsByWord"/>), so text may leave long before the hold-back fills.</summary>
    private readonly bool _byWord;

    private int _scanAt;
    private GuardrailOutcome? _blocked;
    private IReadOnlyList<GuardrailVerdict>? _finalVerdicts;
    private bool _completed;

    internal StreamingGuard(GuardrailPipeline pipeline, GuardrailContext context, int holdBack)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(holdBack);
        _pipeline = pipeline;
        _context = context;
        HoldBack = holdBack;
        _incremental = !pipeline.HasWebhook;
        _aggregates = new Aggregate[pipeline.Members.Count];
        _byWord = _incremental && pipeline.Members.All(m => m is LocalGuardrail { HoldsByWord: true });
        if (_byWord)
        {
            // Only the words a finding could still grow from are held (StreamTail): scan every few words, from the start.
            ScanEvery = WordScanEvery;
            _scanAt = WordScanEvery;
        }
        else
        {
            // Scanning after every quarter of the hold-back keeps releases small and steady (a window is at most 5/4 of
            // the hold-back) instead of one hold-back's worth at a time; the detectors take microseconds per window.
            ScanEvery = Math.Max(1, holdBack / 4);
            _scanAt = HoldBack + ScanEvery;
        }
    }

    /// <summary>Characters kept back from release until more text or the end arrives.</summary>
    public int HoldBack { get; }

    /// <summary>New characters between two scans: 16 when every guardrail holds back by word, else a quarter of <see cref="HoldBack"/> (64 by default).</summary>
    public int ScanEvery { get; }

    /// <summary>The block, once a block guardrail fired.</summary>
    public GuardrailOutcome? Blocked => _blocked;

    /// <summary>One verdict per guardrail, summed over the scans so far (findings counted once, when released).</summary>
    public IReadOnlyList<GuardrailVerdict> Verdicts => _blocked?.Verdicts ?? _finalVerdicts ?? BuildVerdicts(null);

    /// <summary>Adds a delta; returns what may be sent on now.</summary>
    /// <exception cref="InvalidOperationException">The stream was already completed.</exception>
    public ValueTask<StreamingRelease> AppendAsync(string delta, CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        if (_blocked is not null)
        {
            return new(new StreamingRelease("", _blocked));
        }

        if (_pipeline.IsEmpty)
        {
            return new(new StreamingRelease(delta, null));
        }

        _pending.Append(delta);
        if (!_incremental || _pending.Length < _scanAt)
        {
            return new(new StreamingRelease("", null));
        }

        var release = Scan(final: false);
        _scanAt = _pending.Length + ScanEvery;
        return new(release);
    }

    /// <summary>Ends the stream: scans and releases what is left.</summary>
    /// <exception cref="InvalidOperationException">The stream was already completed.</exception>
    public ValueTask<StreamingRelease> CompleteAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();
        _completed = true;
        if (_blocked is not null)
        {
            return new(new StreamingRelease("", _blocked));
        }

        if (_pipeline.IsEmpty)
        {
            _finalVerdicts = [];
            return new(new StreamingRelease("", null));
        }

        if (!_incremental)
        {
            return CompleteWholeAsync(cancellationToken);
        }

        var release = Scan(final: true);
        _finalVerdicts = _blocked?.Verdicts ?? BuildVerdicts(null);
        return new(release);
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("The stream was already completed; create a new StreamingGuard for the next one.");
        }
    }

    private async ValueTask<StreamingRelease> CompleteWholeAsync(CancellationToken cancellationToken)
    {
        var text = _pending.ToString();
        _pending.Clear();
        var outcome = await _pipeline.RunAsync([text], _context, cancellationToken).ConfigureAwait(false);
        _finalVerdicts = outcome.Verdicts;
        if (outcome.IsBlocked)
        {
            _blocked = outcome;
            return new StreamingRelease("", outcome);
        }

        return new StreamingRelease(outcome.Texts[0], null);
    }

    private StreamingRelease Scan(bool final)
    {
        var window = _pending.ToString();
        if (!final && window.Length > MaxPending)
        {
            // Something unfinished kept growing: release up to the hold-back as if the stream ended there.
            var cutAt = window.Length - HoldBack;
            var forced = ScanWindow(window[..cutAt], final: true, out var forcedCut);
            _pending.Remove(0, forcedCut);
            return forced;
        }

        var release = ScanWindow(window, final, out var cut);
        _pending.Remove(0, cut);
        return release;
    }

    private StreamingRelease ScanWindow(string window, bool final, out int cut)
    {
        var members = _pipeline.Members;
        var time = _pipeline.Time;
        var scans = new (LocalScan Scan, List<TextEdit>? Edits, long Started)[members.Count];
        var unfinished = window.Length;
        for (var i = 0; i < members.Count; i++)
        {
            var guardrail = (LocalGuardrail)members[i];
            var started = time.GetTimestamp();
            var tally = default(FindingTally);
            List<TextEdit>? edits = null;
            var scan = guardrail.Scan(window, ref tally, true, ref edits);
            if (edits is not null)
            {
                TextEdits.Merge(edits);
                if (!final)
                {
                    foreach (var edit in edits)
                    {
                        if (Growing(window, edit))
                        {
                            unfinished = Math.Min(unfinished, edit.Start);
                        }
                    }
                }
            }

            scans[i] = (scan, edits, started);
        }

        // Blocks: a block guardrail's finding that is complete (not touching the end of what has arrived), or a failure.
        for (var i = 0; i < members.Count; i++)
        {
            var config = members[i].Config;
            var (scan, edits, started) = scans[i];
            if (config.Action == GuardrailAction.Audit || !scan.Triggered)
            {
                continue;
            }

            var decisive = scan.Failure is not null || (config.Action == GuardrailAction.Block && edits is not null && edits.Exists(e => final || !Growing(window, e)));
            if (decisive)
            {
                var tally = default(FindingTally);
                Count(ref tally, edits, window.Length);
                var note = scan.Failure ?? ((LocalGuardrail)members[i]).Describe(tally, scan.Score);
                _aggregates[i].Add(tally, scan.Score, Microseconds(time, started));
                cut = 0;
                var by = i;
                var verdicts = BuildVerdicts((by, note));
                _blocked = GuardrailOutcome.Blocked([window], verdicts, verdicts[by], $"{_pipeline.Hook.Name()} guardrail '{config.Name}' ({config.Type}) blocked the stream: {note}");
                return new StreamingRelease("", _blocked);
            }
        }

        // Redactions are applied to what is released; audit findings are only counted, but like redactions they are
        // counted in the window that releases them whole, so neither may be cut in two.
        List<TextEdit>? redactions = null;
        List<TextEdit>? whole = null;
        for (var i = 0; i < members.Count; i++)
        {
            if (members[i].Config.Action != GuardrailAction.Block && scans[i].Edits is { } edits)
            {
                (whole ??= []).AddRange(edits);
                if (members[i].Config.Action == GuardrailAction.Redact)
                {
                    (redactions ??= []).AddRange(edits);
                }
            }
        }

        // What stays pending: the whole hold-back, or, when every guardrail holds back by word, the last word and the
        // suspicious words before it (at most the hold-back).
        var limit = final ? window.Length : Math.Max(0, window.Length - (_byWord ? StreamTail.Hold(window, HoldBack) : HoldBack));
        // The hold-back's edge does not cut a word: the next window starts where this release ends, and a detector must
        // see a token whole (a digest's "sha512-" prefix, the start of a base64 run) to judge it as a whole scan would.
        if (!final && limit > 0 && limit < window.Length && !char.IsWhiteSpace(window[limit - 1]) && !char.IsWhiteSpace(window[limit]))
        {
            var start = limit - 1;
            while (start > 0 && !char.IsWhiteSpace(window[start - 1]) && limit - start < HoldBack)
            {
                start--;
            }

            if (start == 0 || char.IsWhiteSpace(window[start - 1]))
            {
                limit = start;
            }
        }

        if (whole is not null)
        {
            TextEdits.Merge(whole);

            // A finished finding goes out now, while the text that identified it (a "password:" key, a "server=" on the
            // line) is still in view; the next window would start after that context.
            foreach (var edit in whole)
            {
                if (final || !Growing(window, edit))
                {
                    limit = Math.Max(limit, edit.End);
                }
            }
        }

        // Unfinished findings stay, with some text before them for the same reason.
        if (unfinished < window.Length)
        {
            limit = Math.Min(limit, Math.Max(0, unfinished - ContextMargin));
        }

        // And none is cut in two.
        for (var moved = true; moved && whole is not null;)
        {
            moved = false;
            foreach (var edit in whole)
            {
                if (edit.Start < limit && edit.End > limit)
                {
                    limit = Math.Max(0, edit.Start - ContextMargin);
                    moved = true;
                }
            }
        }

        if (redactions is not null)
        {
            TextEdits.Merge(redactions);
        }

        if (limit > 0 && limit < window.Length && char.IsHighSurrogate(window[limit - 1]))
        {
            limit--;
        }

        cut = limit;
        for (var i = 0; i < members.Count; i++)
        {
            var tally = default(FindingTally);
            Count(ref tally, scans[i].Edits, cut);
            _aggregates[i].Add(tally, scans[i].Scan.Score, Microseconds(time, scans[i].Started));
        }

        if (cut == 0)
        {
            return new StreamingRelease("", null);
        }

        return new StreamingRelease(redactions is null ? window[..cut] : TextEdits.Apply(window, redactions, cut), null);
    }

    /// <summary>
    /// Whether a finding may still grow with the next delta: it reaches the end of what has arrived, or only non-space
    /// characters follow it there (a detector that trims a token's trailing <c>+</c> or <c>-</c> ends its finding just
    /// before the end, while the token itself goes on).
    /// </summary>
    private static bool Growing(string window, TextEdit edit)
    {
        for (var i = edit.End; i < window.Length; i++)
        {
            if (char.IsWhiteSpace(window[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static void Count(ref FindingTally tally, List<TextEdit>? edits, int before)
    {
        if (edits is null)
        {
            return;
        }

        foreach (var edit in edits)
        {
            if (edit.End <= before)
            {
                tally.Add(edit.Kind);
            }
        }
    }

    private static long Microseconds(TimeProvider time, long started) => (long)time.GetElapsedTime(started).TotalMicroseconds;

    private GuardrailVerdict[] BuildVerdicts((int Index, string Note)? blockedBy)
    {
        var members = _pipeline.Members;
        var verdicts = new GuardrailVerdict[members.Count];
        for (var i = 0; i < members.Count; i++)
        {
            var config = members[i].Config;
            ref var a = ref _aggregates[i];
            var blocked = blockedBy?.Index == i;
            var triggered = blocked || a.Tally.Total > 0;
            var effect = blocked ? GuardrailEffect.Blocked
                : !triggered ? GuardrailEffect.None
                : config.Action switch
                {
                    GuardrailAction.Audit => GuardrailEffect.Audited,
                    GuardrailAction.Redact => GuardrailEffect.Redacted,
                    _ => GuardrailEffect.None,
                };
            var note = blocked ? blockedBy!.Value.Note : triggered ? ((LocalGuardrail)members[i]).Describe(a.Tally, a.Score) : null;
            verdicts[i] = new GuardrailVerdict(config.Name, config.Type, config.Action, triggered, effect, a.Score, a.Tally.ToList(), a.Microseconds, note);
        }

        return verdicts;
    }

    private struct Aggregate
    {
        public FindingTally Tally;
        public double? Score;
        public long Microseconds;

        public void Add(in FindingTally tally, double? score, long microseconds)
        {
            Tally.AddAll(tally);
            Score = Score is null ? score : score is null ? Score : Math.Max(Score.Value, score.Value);
            Microseconds += microseconds;
        }
    }
}
