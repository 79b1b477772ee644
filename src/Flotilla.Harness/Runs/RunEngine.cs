using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Flotilla.Fleet;
using Flotilla.Gateway.Pipeline;
using Flotilla.Governance.Fleet;
using Flotilla.Mcp;
using Flotilla.Storage.Mcp;
using Flotilla.Storage.Runs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Flotilla.Harness.Runs;

/// <summary>
/// Runs loops as durable state machines. A run is its agent's instructions, its input, then steps: a model call through the
/// governed path (as the agent: budgets, limits, guardrails, cache, traces) and, for each tool call the model asks for, a
/// call through the MCP gateway (as the agent: grants, guardrails, approvals, idempotency). Every step is committed before
/// the next begins, so after a crash or restart each unfinished run resumes from its last step; a tool call interrupted in
/// flight is retried with the same idempotency key (<c>RUN:STEP</c>), so a side effect that happened is replayed, not
/// repeated, and one whose outcome is unknown stops the run as <c>needs_intervention</c>. A run waiting for a human's
/// approval holds no thread: it resumes when the approval is decided.
/// </summary>
public sealed partial class RunEngine(
    IRunStore store,
    IApprovalStore approvals,
    LiveFleet fleet,
    GovernedModelCalls models,
    GovernedToolCalls tools,
    HarnessOptions options,
    TimeProvider time,
    ILogger<RunEngine> logger) : BackgroundService
{
    /// <summary>How often runs awaiting approval are checked for a decision.</summary>
    public static readonly TimeSpan ApprovalPoll = TimeSpan.FromSeconds(1);

    private readonly ConcurrentDictionary<string, (CancellationTokenSource Stop, Task Drive)> _active = new(StringComparer.Ordinal);
    private CancellationToken _stopping;

    /// <summary>Starts a run of <paramref name="agent"/> on <paramref name="input"/>; throws <see cref="KeyNotFoundException"/> for an agent not in the fleet.</summary>
    public async Task<RunRecord> StartAsync(string agent, string input, string trigger, CancellationToken cancellationToken, string? parentId = null)
    {
        if (!fleet.Current.Agents.ContainsKey(agent))
        {
            throw new KeyNotFoundException($"no agent '{agent}' in the fleet");
        }

        var now = time.GetUtcNow();
        var run = new RunRecord
        {
            Id = "run_" + Guid.NewGuid().ToString("N")[..20],
            Agent = agent,
            ParentId = parentId,
            Status = RunStatus.Running,
            Input = input,
            Trigger = trigger,
            CreatedAt = now,
            UpdatedAt = now,
        };
        await store.CreateAsync(run, cancellationToken);
        Launch(run.Id);
        return run;
    }

    /// <summary>Cancels a run that is not over; false when it is over already or unknown.</summary>
    public async Task<RunRecord?> CancelAsync(string id, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(id, cancellationToken) is not { } run || RunStatus.IsTerminal(run.Status))
        {
            return null;
        }

        var cancelled = run with { Status = RunStatus.Cancelled, Reason = "cancelled by an operator", UpdatedAt = time.GetUtcNow(), FinishedAt = time.GetUtcNow() };
        await store.UpdateAsync(cancelled, cancellationToken);
        if (_active.TryGetValue(id, out var active))
        {
            await StopQuietlyAsync(active.Stop);
        }

        // Its delegations end with it.
        foreach (var step in await store.StepsAsync(id, cancellationToken))
        {
            if (step.ChildRunId is { } child)
            {
                await CancelAsync(child, cancellationToken);
            }
        }

        return cancelled;
    }

    /// <summary>
    /// Resumes a run that waits (<c>awaiting_approval</c>) or needs a human (<c>needs_intervention</c>: the human checked the
    /// side effect whose outcome was unknown; the run continues as if it had not happened). Null when there is nothing to resume.
    /// </summary>
    public async Task<RunRecord?> ResumeAsync(string id, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(id, cancellationToken) is not { } run || run.Status is not (RunStatus.AwaitingApproval or RunStatus.NeedsIntervention))
        {
            return null;
        }

        if (run.Status == RunStatus.NeedsIntervention)
        {
            var steps = await store.StepsAsync(id, cancellationToken);
            if (steps is [.., { Kind: StepKinds.Tool, Status: StepKinds.Started } interrupted])
            {
                await store.PutStepAsync(interrupted with
                {
                    Status = StepKinds.Done,
                    IsError = true,
                    Result = "The outcome of this call was unknown; a human checked it and resumed the run. Check the current state before repeating it.",
                    FinishedAt = time.GetUtcNow(),
                }, cancellationToken);
            }
        }

        var resumed = run with { Status = RunStatus.Running, Reason = null, UpdatedAt = time.GetUtcNow() };
        await store.UpdateAsync(resumed, cancellationToken);
        Launch(id);
        return resumed;
    }

    /// <summary>Waits until the run is no longer <c>running</c> (or <paramref name="cancellationToken"/> fires) and returns it.</summary>
    public async Task<RunRecord?> WaitAsync(string id, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_active.TryGetValue(id, out var active))
            {
                await active.Drive.WaitAsync(cancellationToken);
            }

            var run = await store.GetAsync(id, cancellationToken);
            if (run is null || run.Status != RunStatus.Running)
            {
                return run;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(50), time, cancellationToken);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        try
        {
            foreach (var run in await store.RunningAsync(stoppingToken))
            {
                LogResuming(logger, run.Id, run.Agent);
                Launch(run.Id);
            }

            using var timer = new PeriodicTimer(ApprovalPoll, time);
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await ResumeDecidedAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Runs in flight stop where they are and stay "running": the next start resumes them from their last step.
        foreach (var (_, active) in _active)
        {
            await StopQuietlyAsync(active.Stop);
        }

        await Task.WhenAll(_active.Values.Select(a => a.Drive)).WaitAsync(cancellationToken).ContinueWith(_ => { }, TaskScheduler.Default);
        await base.StopAsync(cancellationToken);
    }

    /// <summary>Stops a run's drive; one that just ended has disposed its source already.</summary>
    private static async Task StopQuietlyAsync(CancellationTokenSource stop)
    {
        try
        {
            await stop.CancelAsync();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task ResumeDecidedAsync(CancellationToken cancellationToken)
    {
        foreach (var run in await store.ListAsync(null, RunStatus.AwaitingApproval, 1_000, cancellationToken))
        {
            var steps = await store.StepsAsync(run.Id, cancellationToken);
            var waiting = steps.FirstOrDefault(s => s.Kind is StepKinds.Tool or StepKinds.Check && s.Status != StepKinds.Done);
            // Decided, or expired unanswered (which the gate treats as a refusal when the call is retried).
            if (waiting is { ApprovalId: { } approvalId } && await approvals.GetAsync(approvalId, cancellationToken) is { } approval
                && (approval.Status != ApprovalStatus.Pending || approval.ExpiresAt <= time.GetUtcNow()))
            {
                await ResumeAsync(run.Id, cancellationToken);
            }
            else if (waiting is { ChildRunId: { } child } && await store.GetAsync(child, cancellationToken) is { } sub
                && sub.Status is not (RunStatus.AwaitingApproval or RunStatus.NeedsIntervention))
            {
                // The delegation it waits on moves again (or is over): the parent takes it up.
                await ResumeAsync(run.Id, cancellationToken);
            }
        }
    }

    private readonly Lock _launching = new();

    /// <summary>Drives the run in the background, unless it is being driven already (one drive per run, ever).</summary>
    private void Launch(string id)
    {
        lock (_launching)
        {
            if (_active.TryGetValue(id, out var current) && !current.Drive.IsCompleted)
            {
                return;
            }

            LaunchLocked(id);
        }
    }

    private void LaunchLocked(string id)
    {
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? drive = null;
        drive = Task.Run(async () =>
        {
            await started.Task;
            try
            {
                await DriveAsync(id, stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // Cancelled by an operator (already recorded) or stopped by shutdown (resumed at the next start).
            }
            catch (Exception e)
            {
                LogDriveFailed(logger, id, e);
                if (await store.GetAsync(id, CancellationToken.None) is { Status: RunStatus.Running } run)
                {
                    await EndAsync(run, RunStatus.Failed, $"the harness failed: {e.Message}", null, CancellationToken.None);
                }
            }
            finally
            {
                _active.TryRemove(new KeyValuePair<string, (CancellationTokenSource, Task)>(id, (stop, drive!)));
                stop.Dispose();
            }
        }, CancellationToken.None);
        _active[id] = (stop, drive);
        started.SetResult();
    }

    /// <summary>Takes the run from its last persisted step to its end, or to a wait.</summary>
    private async Task DriveAsync(string id, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(id, cancellationToken) is not { Status: RunStatus.Running } run)
        {
            return;
        }

        if (!fleet.Current.Agents.TryGetValue(run.Agent, out var agent))
        {
            await EndAsync(run, RunStatus.Failed, $"agent '{run.Agent}' is no longer in the fleet", null, cancellationToken);
            return;
        }

        string system;
        try
        {
            system = Instructions.SystemPrompt(agent, options.FleetDirectory);
        }
        catch (InstructionsException e)
        {
            await EndAsync(run, RunStatus.Failed, e.Message, null, cancellationToken);
            return;
        }

        var steps = (await store.StepsAsync(id, cancellationToken)).ToList();
        var unavailable = 0;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (LimitReached(run, agent.Harness) is { } limit)
            {
                await EndAsync(run, RunStatus.LimitReached, limit, null, cancellationToken);
                return;
            }

            var next = Conversation.Next(steps);
            switch (next)
            {
                case NextStep.Finished finished:
                    if (run.ParentId is null && agent.Checker is { } checkerName && fleet.Current.Agents.ContainsKey(checkerName))
                    {
                        // The maker is done: its checker grades the answer before the run counts as completed.
                        Replace(steps, await StartCheckAsync(run, agent, checkerName, finished, cancellationToken));
                        break;
                    }

                    await EndAsync(run, RunStatus.Completed, null, finished.Output, cancellationToken);
                    return;
                case NextStep.Checked check:
                    var (checkStep, wait) = await AwaitCheckAsync(run, agent, steps[check.Seq], cancellationToken);
                    Replace(steps, checkStep);
                    if (wait is { } waiting)
                    {
                        run = run with { Status = waiting.Status, Reason = waiting.Reason, UpdatedAt = time.GetUtcNow() };
                        await store.UpdateAsync(run, cancellationToken);
                        return;
                    }

                    if (!checkStep.IsError)
                    {
                        await EndAsync(run, RunStatus.Completed, $"passed by checker '{agent.Checker}'", Conversation.LastAnswer(steps), cancellationToken);
                        return;
                    }

                    var rounds = steps.Count(s => s.Kind == StepKinds.Feedback);
                    if (rounds >= agent.CheckerRevisions)
                    {
                        await EndAsync(run, RunStatus.Failed,
                            $"checker '{agent.Checker}' failed the work after {rounds} revision round(s) (checker.revisions): {Shorten(checkStep.Result, 300)}",
                            Conversation.LastAnswer(steps), cancellationToken);
                        return;
                    }

                    var feedback = new RunStepRecord
                    {
                        RunId = run.Id,
                        Seq = steps.Count,
                        Kind = StepKinds.Feedback,
                        Status = StepKinds.Done,
                        Name = agent.Checker,
                        Result = $"A reviewer ({agent.Checker}) checked your answer and did not pass it:\n{checkStep.Result}\n\nRevise your work to address this, then answer again.",
                        StartedAt = time.GetUtcNow(),
                        FinishedAt = time.GetUtcNow(),
                    };
                    await store.PutStepAsync(feedback, cancellationToken);
                    Replace(steps, feedback);
                    break;
                case NextStep.Tool tool:
                    if (Conversation.Repeats(steps, tool.Call) >= agent.Harness.StuckAfter)
                    {
                        await EndAsync(run, RunStatus.Stuck,
                            $"'{tool.Call.Name}' was called with the same arguments {agent.Harness.StuckAfter} times in a row (harness.stuck_after)", null, cancellationToken);
                        return;
                    }

                    var (toolStep, waitOrEnd) = tool.Call.Name == Delegation.ToolName && run.ParentId is null && agent.Subagents.Count > 0
                        ? await DelegateStepAsync(run, agent, steps, tool, cancellationToken)
                        : await ToolStepAsync(run, agent, steps, tool, cancellationToken);
                    Replace(steps, toolStep);
                    run = await RecordAsync(run, toolStep, cancellationToken);
                    if (waitOrEnd is { Status: RunStatus.Running })
                    {
                        unavailable++;
                        var pause = TimeSpan.FromSeconds(Math.Min(MaxUnavailablePause.TotalSeconds, Math.Pow(2, unavailable - 1)));
                        LogToolUnavailable(logger, run.Id, tool.Call.Name, pause.TotalSeconds);
                        await Task.Delay(pause, time, cancellationToken);
                        break;
                    }

                    unavailable = 0;
                    if (waitOrEnd is { } stop)
                    {
                        if (RunStatus.IsTerminal(stop.Status))
                        {
                            await EndAsync(run, stop.Status, stop.Reason, null, cancellationToken);
                            return;
                        }

                        run = run with { Status = stop.Status, Reason = stop.Reason, UpdatedAt = time.GetUtcNow() };
                        await store.UpdateAsync(run, cancellationToken);
                        return;
                    }

                    break;
                case NextStep.Model model:
                    var modelStep = await ModelStepAsync(run, agent, system, steps, model.Seq, cancellationToken);
                    Replace(steps, modelStep);
                    run = await RecordAsync(run, modelStep, cancellationToken);
                    if (modelStep.IsError)
                    {
                        await EndAsync(run, RunStatus.Failed, modelStep.Result, null, cancellationToken);
                        return;
                    }

                    break;
            }
        }
    }

    private string? LimitReached(RunRecord run, HarnessConfig limits)
    {
        if (run.Steps >= limits.MaxSteps)
        {
            return $"max_steps: {run.Steps} steps taken, the limit is {limits.MaxSteps} (harness.max_steps)";
        }

        if (run.InputTokens + run.OutputTokens >= limits.MaxTokensPerRun)
        {
            return $"max_tokens_per_run: {run.InputTokens + run.OutputTokens} tokens used, the limit is {limits.MaxTokensPerRun}";
        }

        if (limits.MaxCostPerRun is { } maxCost && run.CostUsd >= maxCost)
        {
            return $"max_cost_per_run: ${run.CostUsd:0.######} spent, the limit is ${maxCost:0.######}";
        }

        var elapsed = time.GetUtcNow() - run.CreatedAt;
        return elapsed.TotalSeconds >= limits.TimeoutSeconds
            ? $"timeout_seconds: the run has taken {elapsed.TotalSeconds:0} s, the limit is {limits.TimeoutSeconds} s"
            : null;
    }

    private async Task<RunStepRecord> ModelStepAsync(RunRecord run, AgentConfig agent, string system, List<RunStepRecord> steps, int seq, CancellationToken cancellationToken)
    {
        var started = new RunStepRecord { RunId = run.Id, Seq = seq, Kind = StepKinds.Model, Status = StepKinds.Started, Name = agent.Model, StartedAt = time.GetUtcNow() };
        await store.PutStepAsync(started, cancellationToken);
        var offered = tools.ToolsFor(agent.Name);
        if (run.ParentId is null && agent.Subagents.Count > 0)
        {
            // A sub-run cannot delegate further: only a root run is offered the delegate tool.
            offered = [.. offered, Delegation.Tool(agent.Subagents, fleet.Current.Agents)];
        }

        var body = Conversation.ChatRequest(agent.Model, system, run.Input, steps, offered);
        var begun = time.GetTimestamp();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["loop"] = agent.Name, ["run"] = run.Id };
        var result = await models.CompleteChatAsync(agent.Name, body, metadata, cancellationToken: cancellationToken);
        var done = started with
        {
            Status = StepKinds.Done,
            Name = result.Target ?? agent.Model,
            InputTokens = result.InputTokens,
            OutputTokens = result.OutputTokens,
            CostUsd = result.CostUsd,
            LatencyMs = Math.Round(time.GetElapsedTime(begun).TotalMilliseconds, 3),
            TraceId = result.TraceId,
            FinishedAt = time.GetUtcNow(),
        };
        done = result.IsSuccess
            ? done with { Result = Conversation.AssistantMessage(result.Body) }
            : done with { IsError = true, Result = $"the model call failed ({result.Status}): {Conversation.ErrorMessage(result.Body)}" };
        await store.PutStepAsync(done, cancellationToken);
        return done;
    }

    private async Task<(RunStepRecord Step, (string Status, string Reason)? Stop)> ToolStepAsync(
        RunRecord run, AgentConfig agent, List<RunStepRecord> steps, NextStep.Tool next, CancellationToken cancellationToken)
    {
        var call = next.Call;
        var previous = next.Seq < steps.Count ? steps[next.Seq] : null;
        var started = new RunStepRecord
        {
            RunId = run.Id,
            Seq = next.Seq,
            Kind = StepKinds.Tool,
            Status = StepKinds.Started,
            Name = call.Name,
            Request = call.ToJson(),
            ApprovalId = previous?.ApprovalId,
            StartedAt = previous?.StartedAt ?? time.GetUtcNow(),
        };

        // Committed before the call goes out: after a crash the step is retried under the same idempotency key.
        await store.PutStepAsync(started, cancellationToken);
        var begun = time.GetTimestamp();
        var result = await tools.CallAsync(agent.Name, call.Name, call.Arguments, run.Id, call.Id, $"{run.Id}:{next.Seq}", started.ApprovalId, cancellationToken);
        var latency = Math.Round(time.GetElapsedTime(begun).TotalMilliseconds, 3);
        started = started with { TraceId = result.TraceId };
        if (result.AwaitsApproval)
        {
            var waiting = started with { ApprovalId = result.ApprovalId, Result = result.Text, LatencyMs = latency };
            await store.PutStepAsync(waiting, cancellationToken);
            return (waiting, (RunStatus.AwaitingApproval, $"'{call.Name}' awaits approval {result.ApprovalId} (./flotilla approve {result.ApprovalId})"));
        }

        if (result.ErrorCode == Unavailable)
        {
            // Not sent: the server is down or still connecting. The step stays open and is tried again after a pause.
            var pending = started with { Result = result.Text, LatencyMs = latency };
            await store.PutStepAsync(pending, cancellationToken);
            return (pending, (RunStatus.Running, result.Text));
        }

        if (result.ErrorCode == OutcomeUnknown)
        {
            var unknown = started with { Result = result.Text, IsError = true, LatencyMs = latency };
            await store.PutStepAsync(unknown, cancellationToken);
            return (unknown, (RunStatus.NeedsIntervention, $"the outcome of '{call.Name}' is unknown: {result.Text}; check it, then ./flotilla runs resume {run.Id}"));
        }

        var done = started with { Status = StepKinds.Done, Result = result.Text, IsError = result.IsError, LatencyMs = latency, FinishedAt = time.GetUtcNow() };
        await store.PutStepAsync(done, cancellationToken);
        if (started.ApprovalId is not null && result.ErrorCode == Forbidden && agent.Harness.EndOnDenial)
        {
            // A human said no, and this loop is declared to stop there (harness.on_denied: end).
            return (done, (RunStatus.Denied, $"'{call.Name}' was denied: {result.Text}"));
        }

        return (done, null);
    }

    /// <summary>
    /// A delegation: the sub-agent runs as its own run (parent id set) on the task text alone, with its own definition and
    /// grants; its final answer is the tool's result and its tokens and cost count in this run. Delegations the same answer
    /// asks for start together, so they run in parallel. The step is committed with the sub-run's id before it is awaited,
    /// so a restart waits for the same sub-run instead of starting another.
    /// </summary>
    private async Task<(RunStepRecord Step, (string Status, string Reason)? Stop)> DelegateStepAsync(
        RunRecord run, AgentConfig agent, List<RunStepRecord> steps, NextStep.Tool next, CancellationToken cancellationToken)
    {
        var step = next.Seq < steps.Count ? steps[next.Seq] : null;
        if (step?.ChildRunId is null)
        {
            step = await StartDelegationAsync(run, agent, next.Seq, next.Call, cancellationToken);
            Replace(steps, step);
            if (step.Status == StepKinds.Done)
            {
                return (step, null);
            }

            // Start the answer's other delegations now, so they run side by side.
            foreach (var (seq, call) in Conversation.NotStartedAfter(steps, next.Seq))
            {
                if (call.Name != Delegation.ToolName)
                {
                    break;
                }

                Replace(steps, await StartDelegationAsync(run, agent, seq, call, cancellationToken));
            }
        }

        var child = await WaitAsync(step.ChildRunId!, cancellationToken);
        if (child is null || child.Status is RunStatus.AwaitingApproval or RunStatus.NeedsIntervention)
        {
            return (step, (RunStatus.AwaitingApproval, $"delegation to '{child?.Agent}' ({step.ChildRunId}) waits: {child?.Reason}"));
        }

        var done = step with
        {
            Status = StepKinds.Done,
            Result = child.Status == RunStatus.Completed ? child.Output ?? "" : $"The sub-agent '{child.Agent}' ended {child.Status}: {child.Reason}",
            IsError = child.Status != RunStatus.Completed,
            InputTokens = child.InputTokens,
            OutputTokens = child.OutputTokens,
            CostUsd = child.CostUsd,
            LatencyMs = Math.Round(((child.FinishedAt ?? time.GetUtcNow()) - child.CreatedAt).TotalMilliseconds, 3),
            FinishedAt = time.GetUtcNow(),
        };
        await store.PutStepAsync(done, cancellationToken);
        return (done, null);
    }

    private async Task<RunStepRecord> StartDelegationAsync(RunRecord run, AgentConfig agent, int seq, ToolCallRequest call, CancellationToken cancellationToken)
    {
        var step = new RunStepRecord { RunId = run.Id, Seq = seq, Kind = StepKinds.Tool, Status = StepKinds.Started, Name = call.Name, Request = call.ToJson(), StartedAt = time.GetUtcNow() };
        if (Delegation.Parse(call.Arguments, agent.Subagents) is not ({ } subagent, { } task))
        {
            var refused = step with
            {
                Status = StepKinds.Done,
                IsError = true,
                Result = $"delegate needs {{\"agent\": one of {string.Join(", ", agent.Subagents)}, \"task\": \"…\"}}",
                FinishedAt = time.GetUtcNow(),
            };
            await store.PutStepAsync(refused, cancellationToken);
            return refused;
        }

        // The step is committed before the sub-run exists, then again with its id: a crash in between starts it once more.
        await store.PutStepAsync(step, cancellationToken);
        var child = await StartAsync(subagent, task, "delegate", cancellationToken, run.Id);
        step = step with { ChildRunId = child.Id };
        await store.PutStepAsync(step, cancellationToken);
        return step;
    }

    private async Task<RunStepRecord> StartCheckAsync(RunRecord run, AgentConfig maker, string checker, NextStep.Finished finished, CancellationToken cancellationToken)
    {
        var step = new RunStepRecord { RunId = run.Id, Seq = finished.Seq, Kind = StepKinds.Check, Status = StepKinds.Started, Name = checker, StartedAt = time.GetUtcNow() };
        await store.PutStepAsync(step, cancellationToken);
        var input = $"""
            Grade the work of the loop '{maker.Name}' against your instructions. Answer PASS or FAIL on the first line, then your reasons.

            The task it was given:
            {run.Input}

            Its answer:
            {finished.Output}
            """;
        var child = await StartAsync(checker, input, "checker", cancellationToken, run.Id);
        step = step with { ChildRunId = child.Id };
        await store.PutStepAsync(step, cancellationToken);
        return step;
    }

    /// <summary>Waits for the checker's run; its cost stays its own (the checker is billed as itself, not as the maker).</summary>
    private async Task<(RunStepRecord Step, (string Status, string Reason)? Wait)> AwaitCheckAsync(RunRecord run, AgentConfig maker, RunStepRecord step, CancellationToken cancellationToken)
    {
        if (step.Status == StepKinds.Done)
        {
            return (step, null);
        }

        if (step.ChildRunId is null)
        {
            // Interrupted before the checker's run existed: start it now.
            step = await StartCheckAsync(run, maker, step.Name ?? maker.Checker!, new NextStep.Finished(step.Seq, Conversation.LastAnswer(await store.StepsAsync(run.Id, cancellationToken))), cancellationToken);
        }

        var child = await WaitAsync(step.ChildRunId!, cancellationToken);
        if (child is null || child.Status is RunStatus.AwaitingApproval or RunStatus.NeedsIntervention)
        {
            return (step, (RunStatus.AwaitingApproval, $"the checker's run {step.ChildRunId} waits: {child?.Reason}"));
        }

        var passed = child.Status == RunStatus.Completed && Conversation.Passed(child.Output);
        var done = step with
        {
            Status = StepKinds.Done,
            IsError = !passed,
            Result = child.Status == RunStatus.Completed ? child.Output : $"the checker's run ended {child.Status}: {child.Reason}",
            LatencyMs = Math.Round(((child.FinishedAt ?? time.GetUtcNow()) - child.CreatedAt).TotalMilliseconds, 3),
            FinishedAt = time.GetUtcNow(),
        };
        await store.PutStepAsync(done, cancellationToken);
        return (done, null);
    }

    private static string Shorten(string? text, int max) => text is null ? "" : text.Length <= max ? text : text[..(max - 1)] + "…";

    /// <summary>-32010: the call was sent and no answer came; it may have happened.</summary>
    private const int OutcomeUnknown = -32010;

    /// <summary>-32003: the gateway refused the call (a grant, a guardrail, a human's denial).</summary>
    private const int Forbidden = -32003;

    /// <summary>-32004: the tool's server is unavailable; the call was not sent.</summary>
    private const int Unavailable = -32004;

    /// <summary>Longest pause before a tool call whose server was unavailable is tried again.</summary>
    private static readonly TimeSpan MaxUnavailablePause = TimeSpan.FromSeconds(30);

    /// <summary>Adds a finished (or waiting) step to the run's counters; a step retried under the same number counts once.</summary>
    private async Task<RunRecord> RecordAsync(RunRecord run, RunStepRecord step, CancellationToken cancellationToken)
    {
        var updated = run with
        {
            Steps = Math.Max(run.Steps, step.Seq + 1),
            InputTokens = run.InputTokens + step.InputTokens,
            OutputTokens = run.OutputTokens + step.OutputTokens,
            CostUsd = run.CostUsd + step.CostUsd,
            UpdatedAt = time.GetUtcNow(),
        };
        await store.UpdateAsync(updated, cancellationToken);
        return updated;
    }

    private async Task EndAsync(RunRecord run, string status, string? reason, string? output, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await store.UpdateAsync(run with { Status = status, Reason = reason, Output = output, UpdatedAt = now, FinishedAt = now }, cancellationToken);
        LogEnded(logger, run.Id, run.Agent, status, reason ?? "");
    }

    private static void Replace(List<RunStepRecord> steps, RunStepRecord step)
    {
        if (step.Seq < steps.Count)
        {
            steps[step.Seq] = step;
        }
        else
        {
            steps.Add(step);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Resuming run {RunId} of {Agent} from its last step")]
    private static partial void LogResuming(ILogger logger, string runId, string agent);

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId} of {Agent} ended {Status} {Reason}")]
    private static partial void LogEnded(ILogger logger, string runId, string agent, string status, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Run {RunId}: the server of {Tool} is unavailable; trying again in {Seconds} s")]
    private static partial void LogToolUnavailable(ILogger logger, string runId, string tool, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Run {RunId} failed unexpectedly")]
    private static partial void LogDriveFailed(ILogger logger, string runId, Exception exception);
}

/// <summary>Where the harness finds what the fleet file points at (instructions beside it).</summary>
public sealed record HarnessOptions(string? FleetDirectory);

/// <summary>The kinds and states of run steps.</summary>
public static class StepKinds
{
    public const string Model = "model";
    public const string Tool = "tool";
    public const string Started = "started";

    /// <summary>The checker's grading of the maker's answer (a sub-run of the checker agent).</summary>
    public const string Check = "check";

    /// <summary>The checker's reasons, given to the maker as a user message for a revision round.</summary>
    public const string Feedback = "feedback";
    public const string Done = "done";
}
