using System.Globalization;
using Flotilla.Fleet;
using Flotilla.Guardrails.Patterns;
using Flotilla.Guardrails.Pii;
using Flotilla.Guardrails.PromptInjection;
using Flotilla.Guardrails.Secrets;
using Flotilla.Guardrails.Text;
using Flotilla.Guardrails.Webhook;

namespace Flotilla.Guardrails;

/// <summary>
/// The guardrails of one hook, built once from the fleet file and run on every call.
/// <list type="bullet">
/// <item>Validators (<c>block</c>, <c>audit</c>) look at the texts as they came in, together: webhook validators are all
/// sent at once and local ones run while those requests are in flight (a local detector takes microseconds, less than
/// handing it to another thread would cost).</item>
/// <item>If none blocked, mutators (<c>redact</c>) run one after another in declared order, each on the previous one's
/// output.</item>
/// <item><c>audit</c> records a verdict and never blocks or changes text.</item>
/// </list>
/// With only local guardrails the run completes synchronously; with none found it allocates only the outcome and its verdicts.
/// </summary>
public sealed class GuardrailPipeline
{
    private readonly Guardrail[] _guardrails;
    private readonly GuardrailRef[] _configs;
    private readonly int[] _validators;
    private readonly int[] _mutators;
    private readonly bool _hasWebhook;
    private readonly TimeProvider _time;

    /// <summary>Builds the pipeline of <paramref name="hook"/>.</summary>
    /// <param name="hook">The hook these guardrails guard (sent to webhooks, named in block reasons).</param>
    /// <param name="guardrails">The hook's guardrails, in declared order.</param>
    /// <param name="http">Sends webhook requests; required when a guardrail is a webhook. Not disposed here.</param>
    /// <param name="time">Clock for webhook timeouts and verdict durations. Default <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentException">A guardrail of unknown type, a webhook without url or HttpClient, a regex without (valid) patterns.</exception>
    public GuardrailPipeline(GuardrailHook hook, IReadOnlyList<GuardrailRef> guardrails, HttpClient? http = null, TimeProvider? time = null)
    {
        Hook = hook;
        _time = time ?? TimeProvider.System;
        _guardrails = new Guardrail[guardrails.Count];
        for (var i = 0; i < guardrails.Count; i++)
        {
            _guardrails[i] = Create(guardrails[i], http, _time);
        }

        _configs = [.. guardrails];
        _validators = [.. Enumerable.Range(0, _guardrails.Length).Where(i => !_guardrails[i].IsMutator)];
        _mutators = [.. Enumerable.Range(0, _guardrails.Length).Where(i => _guardrails[i].IsMutator)];
        _hasWebhook = _guardrails.Any(g => g is WebhookGuardrail);
    }

    public GuardrailHook Hook { get; }

    /// <summary>Whether the hook has no guardrail: callers may skip it.</summary>
    public bool IsEmpty => _guardrails.Length == 0;

    /// <summary>The configured guardrails, in declared order.</summary>
    public IReadOnlyList<GuardrailRef> Guardrails => _configs;

    internal IReadOnlyList<Guardrail> Members => _guardrails;

    internal bool HasWebhook => _hasWebhook;

    internal TimeProvider Time => _time;

    /// <summary>Runs the hook's guardrails over <paramref name="texts"/> (message contents, tool arguments or results).</summary>
    /// <param name="texts">The texts to check; a redacted outcome returns as many, in the same order.</param>
    /// <param name="context">The calling agent and team (sent to webhooks).</param>
    /// <param name="cancellationToken">Cancels webhook calls; a cancelled call throws rather than fail open or closed.</param>
    public ValueTask<GuardrailOutcome> RunAsync(IReadOnlyList<string> texts, GuardrailContext context, CancellationToken cancellationToken = default)
    {
        if (_guardrails.Length == 0)
        {
            return new ValueTask<GuardrailOutcome>(GuardrailOutcome.Allowed(texts, []));
        }

        return _hasWebhook ? new ValueTask<GuardrailOutcome>(RunWithWebhooksAsync(texts, context, cancellationToken)) : new ValueTask<GuardrailOutcome>(RunLocal(texts));
    }

    /// <summary>A guard for one streamed text on this hook (normally <see cref="GuardrailHook.LlmOutput"/>).</summary>
    /// <param name="context">The calling agent and team.</param>
    /// <param name="holdBack">Characters kept back from release until more text or the end arrives. Default <see cref="StreamingGuard.DefaultHoldBack"/>.</param>
    public StreamingGuard CreateStreamingGuard(GuardrailContext context, int holdBack = StreamingGuard.DefaultHoldBack) => new(this, context, holdBack);

    private GuardrailOutcome RunLocal(IReadOnlyList<string> texts)
    {
        var verdicts = new GuardrailVerdict[_guardrails.Length];
        foreach (var i in _validators)
        {
            verdicts[i] = Validate((LocalGuardrail)_guardrails[i], texts);
        }

        return Finish(texts, verdicts) ?? MutateLocal(texts, verdicts);
    }

    private async Task<GuardrailOutcome> RunWithWebhooksAsync(IReadOnlyList<string> texts, GuardrailContext context, CancellationToken cancellationToken)
    {
        var verdicts = new GuardrailVerdict[_guardrails.Length];
        var calls = new List<(int Index, Task<WebhookAnswer> Call)>();
        foreach (var i in _validators)
        {
            if (_guardrails[i] is WebhookGuardrail webhook)
            {
                calls.Add((i, webhook.CallAsync(Hook, texts, context, cancellationToken)));
            }
        }

        foreach (var i in _validators)
        {
            if (_guardrails[i] is LocalGuardrail local)
            {
                verdicts[i] = Validate(local, texts);
            }
        }

        foreach (var (i, call) in calls)
        {
            verdicts[i] = WebhookVerdict((WebhookGuardrail)_guardrails[i], await call.ConfigureAwait(false)).Verdict;
        }

        if (Finish(texts, verdicts) is { } blocked)
        {
            return blocked;
        }

        var current = texts;
        for (var m = 0; m < _mutators.Length; m++)
        {
            var i = _mutators[m];
            if (_guardrails[i] is LocalGuardrail local)
            {
                (current, verdicts[i]) = Mutate(local, current);
            }
            else
            {
                var webhook = (WebhookGuardrail)_guardrails[i];
                var answer = await webhook.CallAsync(Hook, current, context, cancellationToken).ConfigureAwait(false);
                (verdicts[i], var replaced) = WebhookVerdict(webhook, answer);
                current = replaced ?? current;
            }

            if (verdicts[i].Effect == GuardrailEffect.Blocked)
            {
                SkipFrom(verdicts, m + 1);
                return Blocked(texts, verdicts, verdicts[i]);
            }
        }

        return Done(texts, current, verdicts);
    }

    private GuardrailOutcome MutateLocal(IReadOnlyList<string> texts, GuardrailVerdict[] verdicts)
    {
        var current = texts;
        for (var m = 0; m < _mutators.Length; m++)
        {
            var i = _mutators[m];
            (current, verdicts[i]) = Mutate((LocalGuardrail)_guardrails[i], current);
            if (verdicts[i].Effect == GuardrailEffect.Blocked)
            {
                SkipFrom(verdicts, m + 1);
                return Blocked(texts, verdicts, verdicts[i]);
            }
        }

        return Done(texts, current, verdicts);
    }

    private static GuardrailOutcome Done(IReadOnlyList<string> texts, IReadOnlyList<string> current, GuardrailVerdict[] verdicts) =>
        ReferenceEquals(current, texts) ? GuardrailOutcome.Allowed(texts, verdicts) : GuardrailOutcome.Redacted(current, verdicts);

    /// <summary>The blocked outcome when a validator blocked (mutators are then skipped); null to go on.</summary>
    private GuardrailOutcome? Finish(IReadOnlyList<string> texts, GuardrailVerdict[] verdicts)
    {
        foreach (var i in _validators)
        {
            if (verdicts[i].Effect == GuardrailEffect.Blocked)
            {
                SkipFrom(verdicts, 0);
                return Blocked(texts, verdicts, verdicts[i]);
            }
        }

        return null;
    }

    private void SkipFrom(GuardrailVerdict[] verdicts, int fromMutator)
    {
        for (var m = fromMutator; m < _mutators.Length; m++)
        {
            var config = _guardrails[_mutators[m]].Config;
            verdicts[_mutators[m]] = new GuardrailVerdict(config.Name, config.Type, config.Action, false, GuardrailEffect.Skipped, null, [], 0, "not run: the call was blocked");
        }
    }

    private GuardrailOutcome Blocked(IReadOnlyList<string> texts, GuardrailVerdict[] verdicts, GuardrailVerdict by) =>
        GuardrailOutcome.Blocked(texts, verdicts, by, $"{Hook.Name()} guardrail '{by.Name}' ({by.Type}) blocked the call: {by.Note}");

    private GuardrailVerdict Validate(LocalGuardrail guardrail, IReadOnlyList<string> texts)
    {
        var started = _time.GetTimestamp();
        var tally = default(FindingTally);
        List<TextEdit>? none = null;
        double? score = null;
        var firstTriggered = -1;
        string? failure = null;
        for (var t = 0; t < texts.Count; t++)
        {
            var scan = guardrail.ScanRemembering(texts[t], ref tally, false, ref none);
            score = Max(score, scan.Score);
            failure ??= scan.Failure;
            if (scan.Triggered && firstTriggered < 0)
            {
                firstTriggered = t;
            }
        }

        return LocalVerdict(guardrail, tally, score, firstTriggered, failure, redacted: false, started);
    }

    private (IReadOnlyList<string> Texts, GuardrailVerdict Verdict) Mutate(LocalGuardrail guardrail, IReadOnlyList<string> texts)
    {
        var started = _time.GetTimestamp();
        var tally = default(FindingTally);
        double? score = null;
        var firstTriggered = -1;
        string? failure = null;
        string[]? changed = null;
        for (var t = 0; t < texts.Count; t++)
        {
            List<TextEdit>? edits = null;
            var scan = guardrail.ScanRemembering(texts[t], ref tally, true, ref edits);
            score = Max(score, scan.Score);
            failure ??= scan.Failure;
            if (!scan.Triggered)
            {
                continue;
            }

            firstTriggered = firstTriggered < 0 ? t : firstTriggered;
            if (edits is { Count: > 0 } && failure is null)
            {
                TextEdits.Merge(edits);
                changed ??= [.. texts];
                changed[t] = TextEdits.Apply(texts[t], edits);
            }
        }

        var verdict = LocalVerdict(guardrail, tally, score, firstTriggered, failure, redacted: changed is not null, started);
        return (failure is null && changed is not null ? changed : texts, verdict);
    }

    private GuardrailVerdict LocalVerdict(LocalGuardrail guardrail, in FindingTally tally, double? score, int firstTriggered, string? failure, bool redacted, long started)
    {
        var config = guardrail.Config;
        var triggered = firstTriggered >= 0;
        var effect = !triggered ? GuardrailEffect.None
            : config.Action == GuardrailAction.Audit ? GuardrailEffect.Audited
            : failure is not null || config.Action == GuardrailAction.Block ? GuardrailEffect.Blocked
            : redacted ? GuardrailEffect.Redacted
            : GuardrailEffect.None;
        string? note = null;
        if (failure is not null)
        {
            note = failure;
        }
        else if (triggered)
        {
            note = guardrail.Describe(tally, score) + (config.Action == GuardrailAction.Redact ? "" : string.Create(CultureInfo.InvariantCulture, $" in text {firstTriggered + 1}"));
        }

        return new GuardrailVerdict(config.Name, config.Type, config.Action, triggered, effect, score, tally.ToList(), Microseconds(started), note);
    }

    private static (GuardrailVerdict Verdict, IReadOnlyList<string>? Texts) WebhookVerdict(WebhookGuardrail webhook, WebhookAnswer answer)
    {
        var config = webhook.Config;
        var elapsed = answer.Microseconds;
        if (answer.Failure is { } failure)
        {
            var effect = config.Action == GuardrailAction.Audit ? GuardrailEffect.Audited : config.FailOpen ? GuardrailEffect.FailedOpen : GuardrailEffect.Blocked;
            var note = effect switch
            {
                GuardrailEffect.FailedOpen => $"webhook {failure}; failing open (on_error: allow)",
                GuardrailEffect.Blocked => $"webhook {failure}; failing closed (set on_error: allow to let calls through when it is down)",
                _ => $"webhook {failure}",
            };
            return (new GuardrailVerdict(config.Name, config.Type, config.Action, false, effect, null, [], elapsed, note), null);
        }

        if (answer.Action == WebhookAction.Allow)
        {
            return (new GuardrailVerdict(config.Name, config.Type, config.Action, false, GuardrailEffect.None, null, [], elapsed, answer.Reason), null);
        }

        var kind = answer.Action == WebhookAction.Block ? "block" : "redact";
        var findings = new[] { new GuardrailFinding(kind, 1) };
        var reason = answer.Reason ?? $"the webhook answered {kind}";
        var outcome = config.Action switch
        {
            GuardrailAction.Audit => GuardrailEffect.Audited,
            GuardrailAction.Redact when answer.Action == WebhookAction.Redact => GuardrailEffect.Redacted,
            _ => GuardrailEffect.Blocked,
        };
        var texts = outcome == GuardrailEffect.Redacted ? answer.Texts : null;
        return (new GuardrailVerdict(config.Name, config.Type, config.Action, true, outcome, null, findings, elapsed, reason), texts);
    }

    private long Microseconds(long started) => (long)_time.GetElapsedTime(started).TotalMicroseconds;

    private static double? Max(double? a, double? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    private static Guardrail Create(GuardrailRef config, HttpClient? http, TimeProvider time) => config.Type switch
    {
        GuardrailTypes.PromptInjection => new PromptInjectionGuardrail(config),
        GuardrailTypes.Secrets => new SecretsGuardrail(config),
        GuardrailTypes.Pii => new PiiGuardrail(config),
        GuardrailTypes.Regex => new RegexGuardrail(config),
        GuardrailTypes.Webhook => new WebhookGuardrail(config, http ?? throw new ArgumentException($"guardrail '{config.Name}' is a webhook: pass an HttpClient", nameof(http)), time),
        _ => throw new ArgumentException($"guardrail '{config.Name}': unknown type '{config.Type}' (known: {string.Join(", ", GuardrailsConfig.BuiltInTypes)})", nameof(config)),
    };
}
