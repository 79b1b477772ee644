using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Gateway.Tests.Mcp;
using Flotilla.Testing;

namespace Flotilla.Gateway.Tests.Harness;

/// <summary>
/// Runs of a loop driven by a scripted model, through the admin API: model steps through the governed path and tool steps
/// through the MCP gateway as the agent, each step persisted; limits, stuck loops, approvals that pause and resume a run,
/// and a restart in the middle of a side effect.
/// </summary>
public sealed class RunTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(FakeMcpServer github, string script, string harness = "") => $$"""
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - name: scripted
              provider: sim
              price: { input_per_million: 1000, output_per_million: 1000 }
              script:
        {{string.Join("\n", script.Split('\n').Select(l => "        " + l))}}
          mcp: { approval_ttl: 1h, idempotency_ttl: 1h }
        ---
        agent:
          name: writer
          owner: docs
          description: keeps the release notes
          model: scripted
          mcp_servers: [github]
        {{harness}}
        """ + "\n" + McpHost.Server("github", github);

    private static async Task<JsonElement> StartAsync(GatewayHost host, bool wait, string input = "Update the notes.")
    {
        using var response = await host.Admin.PostAsJsonAsync("/api/agents/writer/runs", new { input, wait }, Ct);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        response.StatusCode.ShouldBe(wait ? HttpStatusCode.OK : HttpStatusCode.Accepted, body.ToString());
        return body;
    }

    private static async Task<JsonElement> RunAsync(GatewayHost host, string id) =>
        await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{id}", Ct);

    private static async Task<JsonElement> UntilAsync(GatewayHost host, string id, string status)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var run = await RunAsync(host, id);
            if (run.GetProperty("run").GetProperty("status").GetString() == status)
            {
                return run;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"run {id} never became {status}: {run}");
            }

            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task A_scripted_loop_reads_writes_and_answers_with_every_step_persisted_and_traced_as_the_agent()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, """
            - { tool: github__read_file, args: { path: NOTES.md } }
            - { tool: github__write_file, args: { path: NOTES.md, content: "v2 ships Friday" } }
            - { last_tool_result: true }
            """), ready: 1);
        var host = mcp.Host;

        var run = await StartAsync(host, wait: true);

        run.GetProperty("status").GetString().ShouldBe("completed", run.ToString());
        run.GetProperty("output").GetString().ShouldBe("wrote 15 characters to NOTES.md");
        run.GetProperty("steps").GetInt32().ShouldBe(5);
        run.GetProperty("cost_usd").GetDecimal().ShouldBeGreaterThan(0);
        var id = run.GetProperty("id").GetString()!;
        var detail = await RunAsync(host, id);
        detail.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("kind").GetString()).ShouldBe(["model", "tool", "model", "tool", "model"]);
        detail.GetProperty("steps")[1].GetProperty("result").GetString().ShouldBe("contents of NOTES.md");
        github.CallsTo("write_file").ShouldBe(1);

        // Every call of the run is on a trace as the agent, tagged with the run.
        var traces = await host.TracesAsync(5);
        traces.Count(t => t.GetProperty("kind").GetString() == "model_call" && t.GetProperty("metadata").GetProperty("run").GetString() == id).ShouldBe(3);
        traces.Where(t => t.GetProperty("kind").GetString() == "tool_call").ShouldAllBe(t => t.GetProperty("agent").GetString() == "writer");

        // The registry shows the loop with the tools its grants resolve to, its last run and what it spent.
        var agent = await host.Admin.GetFromJsonAsync<JsonElement>("/api/agents/writer", Ct);
        agent.GetProperty("tools").EnumerateArray().Select(t => t.GetString()).ShouldContain("github__write_file");
        agent.GetProperty("last_runs")[0].GetProperty("id").GetString().ShouldBe(id);
        agent.GetProperty("limits").GetProperty("stuck_after").GetInt32().ShouldBe(3);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (agent.GetProperty("spend_last7_days_usd").GetDecimal() == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
            agent = await host.Admin.GetFromJsonAsync<JsonElement>("/api/agents/writer", Ct);
        }

        agent.GetProperty("spend_last7_days_usd").GetDecimal().ShouldBe(run.GetProperty("cost_usd").GetDecimal());
    }

    [Fact]
    public async Task A_loop_repeating_one_call_is_stuck_and_one_over_its_step_limit_is_stopped()
    {
        await using var github = await FakeMcpServer.StartAsync();
        const string Repeating = """
            - { tool: github__read_file, args: { path: a.md } }
            - { tool: github__read_file, args: { path: a.md } }
            - { tool: github__read_file, args: { path: a.md } }
            - { tool: github__read_file, args: { path: a.md } }
            """;
        await using (var mcp = await McpHost.StartAsync(Fleet(github, Repeating), ready: 1))
        {
            var stuck = await StartAsync(mcp.Host, wait: true);
            stuck.GetProperty("status").GetString().ShouldBe("stuck");
            stuck.GetProperty("reason").GetString()!.ShouldContain("3 times in a row");
            github.CallsTo("read_file").ShouldBe(2);
        }

        await using (var mcp = await McpHost.StartAsync(Fleet(github, Repeating, "  harness: { max_steps: 3 }"), ready: 1))
        {
            var limited = await StartAsync(mcp.Host, wait: true);
            limited.GetProperty("status").GetString().ShouldBe("limit_reached");
            limited.GetProperty("reason").GetString()!.ShouldStartWith("max_steps");
            limited.GetProperty("steps").GetInt32().ShouldBe(3);
        }
    }

    [Fact]
    public async Task A_destructive_call_pauses_the_run_across_a_restart_and_the_approval_resumes_it_to_run_once()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, """
            - { tool: github__merge_pr, args: { number: 42 } }
            - { last_tool_result: true }
            """), ready: 1);
        var host = mcp.Host;
        var id = (await StartAsync(host, wait: false)).GetProperty("id").GetString()!;

        var waiting = await UntilAsync(host, id, "awaiting_approval");
        var approval = waiting.GetProperty("steps")[1].GetProperty("approval_id").GetString()!;
        waiting.GetProperty("run").GetProperty("reason").GetString()!.ShouldContain(approval);
        github.CallsTo("merge_pr").ShouldBe(0);

        await host.RestartAsync();
        await mcp.WaitForToolsAsync(1);
        (await RunAsync(host, id)).GetProperty("run").GetProperty("status").GetString().ShouldBe("awaiting_approval");
        using (var approved = await host.Admin.PostAsync($"/api/approvals/{approval}/approve", null, Ct))
        {
            approved.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var done = await UntilAsync(host, id, "completed");
        done.GetProperty("run").GetProperty("output").GetString().ShouldStartWith("merged");
        github.CallsTo("merge_pr").ShouldBe(1);
    }

    [Theory]
    [InlineData("continue")]
    [InlineData("end")]
    public async Task A_denial_is_the_tools_result_for_the_model_or_ends_the_run_as_declared(string onDenied)
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, """
            - { tool: github__merge_pr, args: { number: 42 } }
            - { last_tool_result: true }
            """, $"  harness: {{ on_denied: {onDenied} }}"), ready: 1);
        var host = mcp.Host;
        var id = (await StartAsync(host, wait: false)).GetProperty("id").GetString()!;
        var waiting = await UntilAsync(host, id, "awaiting_approval");
        var approval = waiting.GetProperty("steps")[1].GetProperty("approval_id").GetString()!;

        using (var denied = await host.Admin.PostAsJsonAsync($"/api/approvals/{approval}/deny", new { reason = "not before the release freeze ends" }, Ct))
        {
            denied.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var ended = await UntilAsync(host, id, onDenied == "end" ? "denied" : "completed");
        var text = onDenied == "end" ? ended.GetProperty("run").GetProperty("reason").GetString()! : ended.GetProperty("run").GetProperty("output").GetString()!;
        text.ShouldContain("not before the release freeze ends");
        github.CallsTo("merge_pr").ShouldBe(0);
    }

    [Fact]
    public async Task A_side_effect_cut_off_by_a_stop_needs_a_human_then_the_run_resumes_without_repeating_it()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, """
            - { tool: github__write_file, args: { path: NOTES.md, content: "v2" } }
            - { text: "Notes updated." }
            """), ready: 1);
        var host = mcp.Host;
        github.Hang = true;
        var id = (await StartAsync(host, wait: false)).GetProperty("id").GetString()!;
        while (github.CallsTo("write_file") == 0)
        {
            await Task.Delay(20, Ct);
        }

        // The process stops while the write is in flight; at the next start the run resumes from that step.
        await host.StopAsync();
        github.Hang = false;
        await host.StartAgainAsync();
        await mcp.WaitForToolsAsync(1);

        var intervention = await UntilAsync(host, id, "needs_intervention");
        intervention.GetProperty("run").GetProperty("reason").GetString()!.ShouldContain("unknown");
        github.CallsTo("write_file").ShouldBe(1, "the write whose outcome is unknown is not sent again");

        using (var resumed = await host.Admin.PostAsync($"/api/runs/{id}/resume", null, Ct))
        {
            resumed.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var done = await UntilAsync(host, id, "completed");
        done.GetProperty("run").GetProperty("output").GetString().ShouldBe("Notes updated.");
        github.CallsTo("write_file").ShouldBe(1);
    }

    [Fact]
    public async Task Runs_are_listed_cancelled_and_refused_for_unknown_agents()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync(Fleet(github, """
            - { tool: github__merge_pr, args: { number: 7 } }
            """), ready: 1);
        var host = mcp.Host;
        var id = (await StartAsync(host, wait: false)).GetProperty("id").GetString()!;
        await UntilAsync(host, id, "awaiting_approval");

        using (var cancelled = await host.Admin.PostAsync($"/api/runs/{id}/cancel", null, Ct))
        {
            cancelled.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var listed = await host.Admin.GetFromJsonAsync<JsonElement>("/api/runs?agent=writer&status=cancelled", Ct);
        listed.GetProperty("data").EnumerateArray().Single().GetProperty("id").GetString().ShouldBe(id);
        using var again = await host.Admin.PostAsync($"/api/runs/{id}/cancel", null, Ct);
        again.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        using var unknown = await host.Admin.PostAsJsonAsync("/api/agents/nobody/runs", new { input = "x" }, Ct);
        unknown.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        using var agentKey = await host.Http.GetAsync("/api/runs", Ct);
        agentKey.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }
}

/// <summary>A run's system prompt: the agent's pinned instructions file, then its pinned skills.</summary>
public sealed class InstructionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_model_is_given_the_pinned_instructions_and_skills_and_a_missing_file_fails_the_run_saying_where()
    {
        await using var openai = await FakeUpstream.StartAsync("gpt");
        await using var host = await GatewayHost.StartAsync($$"""
            gateway:
              providers:
                - { name: openai, type: openai, base_url: "{{openai.BaseUrl}}" }
              models:
                - { name: gpt, provider: openai, model: gpt-4o-mini }
            ---
            agent:
              name: writer
              owner: docs
              model: gpt
              instructions: ./writer.md@v3
              skills: [house-style@v2]
            """);
        var directory = host.DataDirectory;
        using (var missing = await host.Admin.PostAsJsonAsync("/api/agents/writer/runs", new { input = "Write.", wait = true }, Ct))
        {
            var failed = await missing.Content.ReadFromJsonAsync<JsonElement>(Ct);
            failed.GetProperty("status").GetString().ShouldBe("failed");
            failed.GetProperty("reason").GetString()!.ShouldContain("writer@v3.md");
        }

        await File.WriteAllTextAsync(Path.Combine(directory, "writer@v3.md"), "You write the release notes, in plain words.", Ct);
        Directory.CreateDirectory(Path.Combine(directory, "skills", "house-style@v2"));
        await File.WriteAllTextAsync(Path.Combine(directory, "skills", "house-style@v2", "SKILL.md"),
            "---\nname: house-style\ndescription: How Northwind writes.\n---\nShort sentences. No jargon.", Ct);
        using var response = await host.Admin.PostAsJsonAsync("/api/agents/writer/runs", new { input = "Write.", wait = true }, Ct);
        (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString().ShouldBe("completed");

        var system = openai.Requests.Single().Json["messages"]![0]!;
        system["role"]!.GetValue<string>().ShouldBe("system");
        var prompt = system["content"]!.GetValue<string>();
        prompt.ShouldStartWith("You write the release notes, in plain words.");
        prompt.ShouldContain("## Skill: house-style (v2)\nHow Northwind writes.\n\nShort sentences. No jargon.");
    }
}

/// <summary>Inline instructions, and the guardrail verdicts of each step shown with the run.</summary>
public sealed class InlineInstructionsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Inline_instructions_are_the_system_prompt_and_each_steps_verdicts_come_with_the_run()
    {
        await using var openai = await FakeUpstream.StartAsync("gpt");
        await using var host = await GatewayHost.StartAsync($$"""
            gateway:
              providers:
                - { name: openai, type: openai, base_url: "{{openai.BaseUrl}}" }
              models:
                - { name: gpt, provider: openai, model: gpt-4o-mini }
              guardrails:
                llm_input: [prompt-injection]
            ---
            agent:
              name: writer
              owner: docs
              model: gpt
              instructions: |
                You write the release notes.
                Keep them short.
            """);

        using var response = await host.Admin.PostAsJsonAsync("/api/agents/writer/runs", new { input = "Write.", wait = true }, Ct);
        var run = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        run.GetProperty("status").GetString().ShouldBe("completed");
        openai.Requests.Single().Json["messages"]![0]!["content"]!.GetValue<string>().ShouldBe("You write the release notes.\nKeep them short.\n");

        var deadline = DateTime.UtcNow.AddSeconds(10);
        JsonElement detail;
        do
        {
            detail = await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{run.GetProperty("id").GetString()}", Ct);
        }
        while (detail.GetProperty("guardrails").GetArrayLength() == 0 && DateTime.UtcNow < deadline && await Task.Delay(100, Ct).ContinueWith(_ => true, Ct));

        var verdict = detail.GetProperty("guardrails").EnumerateArray().Single();
        verdict.GetProperty("seq").GetInt32().ShouldBe(0);
        verdict.GetProperty("verdicts")[0].GetProperty("guardrail").GetString().ShouldBe("prompt-injection");
    }
}

/// <summary>Sub-agents: a root run delegates through the built-in tool; the sub-run is its own run with only the task as context.</summary>
public sealed class DelegationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_delegation_runs_the_sub_agent_on_the_task_alone_and_its_answer_and_cost_come_back()
    {
        await using var github = await FakeMcpServer.StartAsync();
        await using var mcp = await McpHost.StartAsync($$"""
            gateway:
              providers:
                - { name: sim, type: simulated }
              models:
                - name: lead-model
                  provider: sim
                  price: { input_per_million: 1000, output_per_million: 1000 }
                  script:
                    - { tool: delegate, args: { agent: explorer, task: "Read NOTES.md and say what it holds." } }
                    - { last_tool_result: true }
                - name: explorer-model
                  provider: sim
                  price: { input_per_million: 1000, output_per_million: 1000 }
                  script:
                    - { tool: github__read_file, args: { path: NOTES.md } }
                    - { last_tool_result: true }
            ---
            agent:
              name: lead
              owner: docs
              model: lead-model
              subagents: [explorer]
            ---
            agent:
              name: explorer
              owner: docs
              description: reads the repository
              model: explorer-model
              mcp_servers: [github]
            """ + "\n" + McpHost.Server("github", github), ready: 1);
        var host = mcp.Host;

        using var response = await host.Admin.PostAsJsonAsync("/api/agents/lead/runs", new { input = "What is in the notes? (secret context: the launch code is 1234)", wait = true }, Ct);
        var run = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);

        run.GetProperty("status").GetString().ShouldBe("completed", run.ToString());
        run.GetProperty("output").GetString().ShouldBe("contents of NOTES.md");
        var detail = await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{run.GetProperty("id").GetString()}", Ct);
        var delegation = detail.GetProperty("steps")[1];
        var childId = delegation.GetProperty("child_run_id").GetString()!;
        var child = await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{childId}", Ct);
        child.GetProperty("run").GetProperty("parent_id").GetString().ShouldBe(run.GetProperty("id").GetString());
        child.GetProperty("run").GetProperty("agent").GetString().ShouldBe("explorer");
        child.GetProperty("run").GetProperty("input").GetString().ShouldBe("Read NOTES.md and say what it holds.");

        // Isolated context: nothing of the root's conversation reached the sub-agent's model calls.
        var traces = await host.TracesAsync(5);
        traces.Where(t => t.GetProperty("agent").GetString() == "explorer" && t.GetProperty("kind").GetString() == "model_call")
            .ShouldAllBe(t => t.GetProperty("metadata").GetProperty("run").GetString() == childId);
        delegation.GetProperty("cost_usd").GetDecimal().ShouldBe(child.GetProperty("run").GetProperty("cost_usd").GetDecimal());
        run.GetProperty("cost_usd").GetDecimal().ShouldBeGreaterThan(child.GetProperty("run").GetProperty("cost_usd").GetDecimal());
        github.CallsTo("read_file").ShouldBe(1);
    }
}

/// <summary>Two delegations in one answer run side by side.</summary>
public sealed class ParallelDelegationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_delegations_of_one_answer_start_together_and_both_answers_come_back()
    {
        await using var host = await GatewayHost.StartAsync("""
            gateway:
              providers:
                - { name: sim, type: simulated }
                - { name: slow, type: simulated, simulate: { latency_ms: 400 } }
              models:
                - name: lead-model
                  provider: sim
                  script:
                    - calls:
                        - { tool: delegate, args: { agent: explorer, task: "Read the API docs." } }
                        - { tool: delegate, args: { agent: explorer, task: "Read the changelog." } }
                    - { text: "Both read." }
                - name: explorer-model
                  provider: slow
                  script:
                    - { text: "Read it." }
            ---
            agent:
              name: lead
              owner: docs
              model: lead-model
              subagents: [explorer]
            ---
            agent:
              name: explorer
              owner: docs
              model: explorer-model
            """);

        using var response = await host.Admin.PostAsJsonAsync("/api/agents/lead/runs", new { input = "Read everything.", wait = true }, Ct);
        var run = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        run.GetProperty("status").GetString().ShouldBe("completed", run.ToString());
        var detail = await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{run.GetProperty("id").GetString()}", Ct);
        var children = new List<JsonElement>();
        foreach (var step in detail.GetProperty("steps").EnumerateArray().Where(s => s.TryGetProperty("child_run_id", out _)))
        {
            children.Add((await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{step.GetProperty("child_run_id").GetString()}", Ct)).GetProperty("run"));
            step.GetProperty("result").GetString().ShouldBe("Read it.");
        }

        children.Select(c => c.GetProperty("input").GetString()).ShouldBe(["Read the API docs.", "Read the changelog."]);
        // The second started before the first finished: they ran side by side, not one after the other.
        children[1].GetProperty("created_at").GetDateTimeOffset().ShouldBeLessThan(children[0].GetProperty("finished_at").GetDateTimeOffset());
    }
}

/// <summary>Maker and checker: the checker grades a finished run; a fail sends the maker back for a revision round.</summary>
public sealed class CheckerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Fleet(string verdict) => $$"""
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - name: maker-model
              provider: sim
              price: { input_per_million: 1000, output_per_million: 1000 }
              script:
                - { text: "Draft v1" }
                - { text: "Draft v2" }
            - name: checker-model
              provider: sim
              price: { input_per_million: 1000, output_per_million: 1000 }
              script:
                - { text: "{{verdict}}" }
        ---
        agent:
          name: writer
          owner: docs
          model: maker-model
          checker: { agent: reviewer, revisions: 1 }
        ---
        agent:
          name: reviewer
          owner: docs
          role: checker
          model: checker-model
        """;

    private static async Task<JsonElement> RunAsync(GatewayHost host)
    {
        using var response = await host.Admin.PostAsJsonAsync("/api/agents/writer/runs", new { input = "Write the notes.", wait = true }, Ct);
        var run = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{run.GetProperty("id").GetString()}", Ct);
    }

    [Fact]
    public async Task A_pass_completes_the_run_with_the_makers_answer_and_the_checker_billed_as_itself()
    {
        await using var host = await GatewayHost.StartAsync(Fleet("PASS\\nClear and complete."));

        var detail = await RunAsync(host);

        var run = detail.GetProperty("run");
        run.GetProperty("status").GetString().ShouldBe("completed", detail.ToString());
        run.GetProperty("output").GetString().ShouldBe("Draft v1");
        run.GetProperty("reason").GetString()!.ShouldContain("reviewer");
        detail.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("kind").GetString()).ShouldBe(["model", "check"]);
        var checkerRun = detail.GetProperty("steps")[1].GetProperty("child_run_id").GetString()!;
        var check = (await host.Admin.GetFromJsonAsync<JsonElement>($"/api/runs/{checkerRun}", Ct)).GetProperty("run");
        check.GetProperty("agent").GetString().ShouldBe("reviewer");
        check.GetProperty("input").GetString()!.ShouldContain("Draft v1");
        check.GetProperty("cost_usd").GetDecimal().ShouldBeGreaterThan(0);
        run.GetProperty("cost_usd").GetDecimal().ShouldBe(detail.GetProperty("steps")[0].GetProperty("cost_usd").GetDecimal(), "the checker's cost is its own");
    }

    [Fact]
    public async Task A_fail_sends_the_maker_back_once_with_the_reasons_then_fails_the_run()
    {
        await using var host = await GatewayHost.StartAsync(Fleet("FAIL\\nIt does not mention the date."));

        var detail = await RunAsync(host);

        var run = detail.GetProperty("run");
        run.GetProperty("status").GetString().ShouldBe("failed", detail.ToString());
        run.GetProperty("reason").GetString()!.ShouldContain("does not mention the date");
        run.GetProperty("output").GetString().ShouldBe("Draft v2");
        detail.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("kind").GetString()).ShouldBe(["model", "check", "feedback", "model", "check"]);
        detail.GetProperty("steps")[2].GetProperty("result").GetString()!.ShouldContain("does not mention the date");
    }
}
