using Flotilla.Fleet.Loading;
using static Flotilla.Fleet.Tests.FleetText;

namespace Flotilla.Fleet.Tests.Loading;

/// <summary>Every kind of error, each with the position of the offending text, counted independently of the loader.</summary>
public sealed class FleetLoaderErrorTests
{
    // ---- unknown keys -------------------------------------------------------------------------------------------

    [Fact]
    public void Unknown_key_close_to_a_known_one_suggests_it()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              harness: { max_steps: 60, max_token_per_run: 1_500_000 }
            """;

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "max_token_per_run")}: agent.harness.max_token_per_run: unknown key; did you mean 'max_tokens_per_run'? (known: max_cost_per_run, max_steps, max_tokens_per_run, on_denied, stuck_after, timeout_seconds)");
    }

    [Theory]
    [InlineData("gatway: {}", "gateway")]
    [InlineData("Agent: { name: a, owner: t }", "agent")]
    [InlineData("mcp-servers: []", "mcp_servers")]
    public void Unknown_top_level_key_suggests_the_section(string yaml, string suggestion) =>
        SingleError(yaml).ShouldContain($"unknown key; did you mean '{suggestion}'?");

    [Fact]
    public void Unknown_key_with_nothing_close_lists_the_known_keys()
    {
        const string yaml = "agent: { name: a, owner: team, colour: blue }";

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "colour")}: agent.colour: unknown key; remove it or use one of: checker, description, harness, instructions, mcp_servers, metadata, model, name, owner, owns, role, skills, subagents, trigger");
    }

    [Fact]
    public void A_key_in_the_wrong_section_says_where_it_belongs()
    {
        const string yaml = """
            gateway:
              retries: { attempts: 2 }
              routing:
                caching: { type: exact }
            ---
            agent: { name: a, owner: team, schedule: "0 6 * * *" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "retries")}: gateway.retries: this key belongs under gateway.routing; move it there",
            $"{At(yaml, "caching")}: gateway.routing.caching: this key belongs under gateway; move it there",
            $"{At(yaml, "schedule")}: agent.schedule: this key belongs under trigger; move it there",
        ]);
    }

    // ---- wrong types --------------------------------------------------------------------------------------------

    [Fact]
    public void Text_where_an_integer_is_expected()
    {
        const string yaml = "agent: { name: a, owner: team, harness: { max_steps: sixty } }";

        SingleError(yaml).ShouldBe($"{At(yaml, "sixty")}: agent.harness.max_steps: expected an integer, found 'sixty'");
    }

    [Fact]
    public void A_list_where_a_mapping_is_expected()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              harness: [60, 1500000]
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "[60")}: agent.harness: expected a mapping (key: value pairs), found a list");
    }

    [Fact]
    public void A_mapping_or_a_single_value_where_a_list_is_expected()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              skills: triage-runbook@v3
              owns: { artifact: notes }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "triage-runbook")}: agent.skills: expected a list, found 'triage-runbook@v3'",
            $"{At(yaml, "{ artifact")}: agent.owns: expected a list, found a mapping",
        ]);
    }

    [Fact]
    public void A_mapping_where_text_is_expected()
    {
        const string yaml = "agent: { name: { first: a }, owner: team }";

        SingleError(yaml).ShouldBe($"{At(yaml, "{ first")}: agent.name: expected a text value, found a mapping");
    }

    [Fact]
    public void Numbers_out_of_range_name_the_range()
    {
        const string yaml = """
            gateway:
              routing:
                retries: { attempts: 11, on_status_codes: [429, 600] }
            ---
            agent: { name: a, owner: team, harness: { max_steps: 0, max_tokens_per_run: -5 } }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "11")}: gateway.routing.retries.attempts: 11 is out of range (0..10)",
            $"{At(yaml, "600")}: gateway.routing.retries.on_status_codes: 600 is out of range (100..599)",
            $"{At(yaml, "0,")}: agent.harness.max_steps: 0 is out of range (1..100000)",
            $"{At(yaml, "-5")}: agent.harness.max_tokens_per_run: -5 is out of range (at least 1)",
        ]);
    }

    [Fact]
    public void Wrong_numbers_booleans_and_choices()
    {
        const string yaml = """
            gateway:
              providers: [ { name: p, type: openia } ]
              caching: { type: semantic, similarity_threshold: high, cache_tool_calls: yes, namespace_per: user }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "openia")}: gateway.providers[0].type: 'openia' is not one of openai, anthropic, simulated",
            $"{At(yaml, "high")}: gateway.caching.similarity_threshold: expected a number, found 'high'",
            $"{At(yaml, "yes")}: gateway.caching.cache_tool_calls: expected true or false, found 'yes'",
            $"{At(yaml, "user")}: gateway.caching.namespace_per: 'user' is not one of agent, team, none",
        ]);
    }

    [Fact]
    public void Required_keys_say_what_to_add()
    {
        const string yaml = """
            agent:
              name: a
            ---
            gateway:
              models:
                - { name: m }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "name: a")}: agent.owner is required; add owner: … to agent",
            $"{At(yaml, "{ name: m }")}: gateway.models[0].provider is required; add provider: … to gateway.models[0]",
        ]);
    }

    // ---- references ---------------------------------------------------------------------------------------------

    [Fact]
    public void Dangling_references_point_at_the_name_that_dangles()
    {
        const string yaml = """
            gateway:
              providers: [ { name: sim, type: simulated } ]
              models:
                - { name: sim-small, provider: sim }
                - { name: gpt-4o, provider: openai }
              routing:
                virtual_model: triage-defualt
                virtual_models:
                  - { name: triage-default, targets: [ { model: sim-small }, { model: sim-large } ] }
            ---
            mcp_server: { name: github, url: "https://mcp.example/github" }
            ---
            agent:
              name: triage
              owner: team
              model: triage-dflt
              mcp_servers: [github, linear]
              subagents: [explorer, triage]
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "openai")}: model 'gpt-4o': provider 'openai' is not declared under gateway.providers (declared: sim); declare it or fix the name",
            $"{At(yaml, "triage-defualt")}: gateway.routing.virtual_model: 'triage-defualt' is neither a virtual model nor a model (declared: gpt-4o, sim-small, triage-default); declare it or fix the name",
            $"{At(yaml, "sim-large")}: virtual model 'triage-default': target 'sim-large' is not declared under gateway.models (declared: gpt-4o, sim-small); declare it or fix the name",
            $"{At(yaml, "triage-dflt")}: agent 'triage': model 'triage-dflt' is neither a virtual model nor a model (declared: gpt-4o, sim-small, triage-default); declare it under gateway or fix the name",
            $"{At(yaml, "linear")}: agent 'triage': mcp server 'linear' is not declared (declared: github); add an mcp_server document or fix the name",
            $"{At(yaml, "explorer")}: agent 'triage': subagent 'explorer' is not a declared agent (declared: triage); add an agent document or fix the name",
            $"{At(yaml, "triage]")}: agent 'triage': cannot be its own subagent; remove 'triage' from subagents",
        ]);
    }

    [Fact]
    public void A_grant_naming_an_unknown_server_in_mapping_form_points_at_the_server()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              mcp_servers:
                - { server: gitlab, tools: [merge] }
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "gitlab")}: agent 'a': mcp server 'gitlab' is not declared (none declared); add an mcp_server document or fix the name");
    }

    [Fact]
    public void Caching_embedding_model_must_be_declared()
    {
        const string yaml = "gateway: { caching: { type: semantic, embedding_model: nope } }";

        SingleError(yaml).ShouldBe($"{At(yaml, "nope")}: gateway.caching.embedding_model: 'nope' is not declared under gateway.models; declare it with type: embedding");
    }

    [Fact]
    public void Caching_embedding_model_must_not_be_a_chat_model()
    {
        const string yaml = """
            gateway:
              providers: [ { name: sim, type: simulated } ]
              models: [ { name: chat, provider: sim } ]
              caching: { type: semantic, embedding_model: chat }
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "chat }")}: gateway.caching.embedding_model: 'chat' is a chat model; name a model declared with type: embedding");
    }

    [Fact]
    public void Loops_and_the_default_route_need_a_chat_model()
    {
        var yaml = """
            agent: { name: a, owner: team, model: sim-embed }
            """ + "\n" + Gateway.Replace("virtual_model: assistant", "virtual_model: sim-embed", StringComparison.Ordinal);

        Errors(yaml).ShouldBe([
            $"{At(yaml, "sim-embed")}: agent 'a': model 'sim-embed' is an embedding model; a loop needs a chat model or a virtual model",
            $"{At(yaml, "sim-embed", 3)}: gateway.routing.virtual_model: 'sim-embed' is an embedding model; the default must be a chat model or a virtual model",
        ]);
    }

    // ---- names --------------------------------------------------------------------------------------------------

    [Fact]
    public void Duplicate_names_point_at_both_declarations()
    {
        const string yaml = """
            gateway:
              providers:
                - { name: sim, type: simulated }
                - { name: sim, type: simulated }
              models:
                - { name: m, provider: sim }
              routing:
                virtual_models: [ { name: m, targets: [m] } ]
            ---
            agent: { name: a, owner: team }
            ---
            agent: { name: a, owner: team }
            ---
            mcp_servers:
              - { name: s, url: "https://mcp.example" }
              - { name: s, url: "https://mcp.example" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "{ name: sim", 2)}: provider 'sim' is declared twice (first at {At(yaml, "{ name: sim")}); rename or remove one",
            $"{At(yaml, "{ name: m, targets")}: virtual model 'm': a model has the same name; callers could not tell them apart",
            $"{At(yaml, "{ name: a", 2)}: agent 'a' is declared twice (first at {At(yaml, "{ name: a")}); rename or remove one",
            $"{At(yaml, "{ name: s,", 2)}: mcp_server 's' is declared twice (first at {At(yaml, "{ name: s,")}); rename or remove one",
        ]);
    }

    [Fact]
    public void Agent_names_are_restricted()
    {
        const string yaml = "agent: { name: bug report triage, owner: team }";

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "bug")}: agent.name: 'bug report triage' is not a valid agent name; use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)");
    }

    // ---- credentials --------------------------------------------------------------------------------------------

    [Fact]
    public void A_literal_api_key_is_an_error_that_does_not_repeat_the_key()
    {
        const string secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        const string yaml = $$"""
            gateway:
              providers:
                - { name: openai, type: openai, api_key: {{secret}} }
            """;

        var error = SingleError(yaml);

        error.ShouldBe($"{At(yaml, secret)}: gateway.providers[0].api_key: literal credentials are not allowed in the fleet file; put the value in an environment variable and write \"${{env:NAME}}\" here");
        error.ShouldNotContain("AbCdEf");
    }

    [Fact]
    public void A_literal_of_any_shape_in_a_credential_field_is_refused_without_echo()
    {
        const string yaml = """
            gateway:
              providers: [ { name: openai, type: openai, api_key: "hunter2-but-longer" } ]
            ---
            mcp_server:
              name: github
              url: "https://mcp.example"
              auth: { type: bearer, token: correct-horse-battery }
            """;

        var errors = Errors(yaml);

        errors.ShouldBe([
            $"{At(yaml, "\"hunter2")}: gateway.providers[0].api_key: literal credentials are not allowed in the fleet file; put the value in an environment variable and write \"${{env:NAME}}\" here",
            $"{At(yaml, "correct-horse")}: mcp_server.auth.token: literal credentials are not allowed in the fleet file; put the value in an environment variable and write \"${{env:NAME}}\" here",
        ]);
        errors.ShouldAllBe(e => !e.Contains("hunter2") && !e.Contains("correct-horse"));
    }

    [Theory]
    [InlineData("sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")]
    [InlineData("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx")]
    [InlineData("ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")]
    [InlineData("AKIAABCDEFGHIJKLMNOP")]
    [InlineData("xoxb-1234567890-abcdef")]
    [InlineData("Bearer sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")]
    public void A_credential_shaped_value_anywhere_is_an_error_that_does_not_repeat_it(string secret)
    {
        var yaml = $$"""
            gateway:
              providers:
                - name: openai
                  type: openai
                  api_key: "${env:OPENAI_API_KEY}"
                  headers: { X-Extra: "{{secret}}" }
            """;

        var error = SingleError(yaml);

        error.ShouldBe($"{At(yaml, "\"" + secret)}: this looks like a literal credential; put it in an environment variable, write \"${{env:NAME}}\" here, and rotate it since it has been written to a file");
        error.ShouldNotContain(secret[^6..]);
    }

    [Fact]
    public void Credentials_are_found_in_any_key_and_never_echoed_by_other_messages()
    {
        const string secret = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        const string yaml = $$"""
            agent:
              name: a
              owner: team
              description: "token {{secret}} for later"
              harness: { max_steps: {{secret}} }
            """;

        var errors = Errors(yaml);

        errors.ShouldBe([
            $"{At(yaml, "\"token")}: this looks like a literal credential; put it in an environment variable, write \"${{env:NAME}}\" here, and rotate it since it has been written to a file",
            $"{At(yaml, secret, 2)}: agent.harness.max_steps: expected an integer, found a credential-shaped value (not shown)",
        ]);
        errors.ShouldAllBe(e => !e.Contains("AbCdEf"));
    }

    [Fact]
    public void References_must_be_exactly_env_NAME()
    {
        const string yaml = """
            gateway:
              providers:
                - name: openai
                  type: openai
                  api_key: "${env:1BAD}"
                  headers: { Authorization: "Bearer ${env:TOKEN}" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "\"${env:1BAD")}: gateway.providers[0].api_key: not a valid reference; write exactly \"${{env:NAME}}\" (NAME: letters, digits and '_', not starting with a digit)",
            $"{At(yaml, "\"Bearer")}: gateway.providers[0].headers.Authorization: a reference must be the whole value, exactly \"${{env:NAME}}\" (NAME: letters, digits, '_'); put any prefix into the environment variable itself",
        ]);
    }

    [Fact]
    public void Bearer_auth_without_a_token_says_how_to_give_one()
    {
        const string yaml = """
            mcp_server:
              name: github
              url: "https://mcp.example"
              auth: { type: bearer }
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "{ type")}: mcp_server.auth: bearer auth needs token: \"${{env:NAME}}\"");
    }

    // ---- agent rules --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("0 6 * *")]
    [InlineData("every morning")]
    [InlineData("0 25 * * *")]
    [InlineData("0 6 * * 1-5 2026")]
    public void An_invalid_cron_schedule_points_at_the_schedule(string schedule)
    {
        var yaml = $$"""
            agent:
              name: a
              owner: team
              trigger: { schedule: "{{schedule}}" }
            """;

        SingleError(yaml).ShouldStartWith(
            $"{At(yaml, "\"" + schedule)}: agent.trigger.schedule: '{schedule}' is not a five-field cron expression (minute hour day-of-month month day-of-week, e.g. \"0 6 * * 1-5\"): ");
    }

    [Fact]
    public void An_unknown_time_zone_is_an_error()
    {
        const string yaml = "agent: { name: a, owner: team, trigger: { schedule: \"0 6 * * *\", timezone: Mars/Olympus } }";

        SingleError(yaml).ShouldBe($"{At(yaml, "Mars")}: agent.trigger.timezone: 'Mars/Olympus' is not a known time zone; use an IANA name such as Europe/Berlin or UTC");
    }

    [Fact]
    public void Two_agents_owning_the_same_artifact_is_an_error_at_the_second_claim()
    {
        const string yaml = """
            agent:
              name: notes-writer
              owner: docs
              owns: [release-notes-draft]
            ---
            agent:
              name: notes-polisher
              owner: docs
              owns: [changelog, release-notes-draft]
            """;

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "release-notes-draft", 2)}: agent 'notes-polisher': artifact 'release-notes-draft' is already owned by agent 'notes-writer' ({At(yaml, "name: notes-writer")}); an artifact has one owner, remove it from one of them");
    }

    [Fact]
    public void An_agent_listing_an_artifact_twice_is_told_once()
    {
        const string yaml = "agent: { name: a, owner: team, owns: [notes, notes] }";

        SingleError(yaml).ShouldBe($"{At(yaml, "notes", 2)}: agent.owns: 'notes' is listed twice (first at {At(yaml, "notes")}); remove one");
    }

    [Fact]
    public void Unpinned_skills_and_instructions_are_errors()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              instructions: ./triage.md
              skills: [triage-runbook@v3, summarize, changelog@]
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "./triage.md")}: agent.instructions: './triage.md' is not pinned; write ./triage.md@VERSION (e.g. ./triage.md@v1) so that an edit cannot reach this loop unreviewed",
            $"{At(yaml, "summarize")}: agent.skills: 'summarize' is not pinned; write summarize@VERSION (e.g. summarize@v1) so that an edit cannot reach this loop unreviewed",
            $"{At(yaml, "changelog@")}: agent.skills: 'changelog' is not pinned; write changelog@VERSION (e.g. changelog@v1) so that an edit cannot reach this loop unreviewed",
        ]);
    }

    // ---- gateway values -----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("50 per day")]
    [InlineData("50/fortnight")]
    [InlineData("50")]
    [InlineData("/day")]
    [InlineData("fifty/day")]
    public void An_invalid_budget_limit_shows_the_expected_form(string limit)
    {
        var yaml = $$"""
            gateway:
              budgets:
                - { applies_per: agent, limit: "{{limit}}" }
            """;

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "\"" + limit)}: gateway.budgets[0].limit: '{limit}' is not a budget; write USD/WINDOW such as 50/day (windows: minute, hour, day, week, month)");
    }

    [Fact]
    public void Budget_and_rate_limit_scopes_are_checked()
    {
        const string yaml = """
            gateway:
              budgets:
                - { applies_per: user, limit: 5/day }
              rate_limits:
                - { applies_per: metadata., requests_per_minute: 10 }
                - { applies_per: agent }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "user")}: gateway.budgets[0].applies_per: 'user' is not one of agent, team, model, virtual_model, metadata.KEY",
            $"{At(yaml, "metadata.")}: gateway.rate_limits[0].applies_per: 'metadata.' is not one of agent, team, model, virtual_model, metadata.KEY",
            $"{At(yaml, "{ applies_per: agent }")}: gateway.rate_limits[1]: a rate limit needs at least one of requests_per_minute/hour/day, tokens_per_minute/hour/day or tool_calls_per_minute",
        ]);
    }

    [Theory]
    [InlineData("1hour")]
    [InlineData("an hour")]
    [InlineData("0s")]
    public void A_bad_duration_shows_examples(string ttl)
    {
        var yaml = $"gateway: {{ caching: {{ type: exact, ttl: {ttl} }} }}";

        SingleError(yaml).ShouldBe($"{At(yaml, ttl)}: gateway.caching.ttl: '{ttl}' is not a duration; write e.g. 500ms, 30s, 5m, 1h or 7d");
    }

    [Fact]
    public void Bad_urls_and_dates_are_errors()
    {
        const string yaml = """
            gateway:
              providers: [ { name: p, type: openai, base_url: "api.openai.com/v1" } ]
              models: [ { name: m, provider: p, deprecated_after: 31/03/2027 } ]
            ---
            mcp_server: { name: s, url: "ftp://mcp.example" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "\"api.")}: gateway.providers[0].base_url: 'api.openai.com/v1' is not an absolute http(s) URL",
            $"{At(yaml, "31/")}: gateway.models[0].deprecated_after: '31/03/2027' is not a date; write YYYY-MM-DD",
            $"{At(yaml, "\"ftp")}: mcp_server.url: 'ftp://mcp.example' is not an absolute http(s) URL",
        ]);
    }

    [Fact]
    public void Mcp_servers_need_what_their_transport_needs()
    {
        const string yaml = """
            mcp_servers:
              - { name: web }
              - { name: local, transport: stdio }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "{ name: web")}: mcp_server 'web': transport http needs url",
            $"{At(yaml, "{ name: local")}: mcp_server 'local': transport stdio needs command: [program, args...]",
        ]);
    }

    [Fact]
    public void Guardrails_are_checked()
    {
        const string yaml = """
            gateway:
              guardrails:
                llm_input: [prompt-injektion]
                llm_output: [ { type: regex, patterns: ["(unclosed"] } ]
                mcp_pre_tool: [ { type: webhook, on_error: retry } ]
            """;

        var errors = Errors(yaml);

        errors.Count.ShouldBe(4, string.Join(Environment.NewLine, errors));
        errors[0].ShouldBe($"{At(yaml, "prompt-injektion")}: gateway.guardrails.llm_input: unknown guardrail 'prompt-injektion' (known: prompt-injection, secrets-detection, pii, regex, webhook)");
        errors[1].ShouldStartWith($"{At(yaml, "{ type: regex")}: guardrail 'regex': pattern '(unclosed' is not a valid regular expression: ");
        errors[2].ShouldBe($"{At(yaml, "{ type: webhook")}: guardrail 'webhook': type webhook needs url");
        errors[3].ShouldBe($"{At(yaml, "retry")}: gateway.guardrails.mcp_pre_tool[0].on_error: 'retry' is not one of allow, block");
    }

    [Fact]
    public void Routing_rules_are_checked()
    {
        const string yaml = """
            gateway:
              providers:
                - { name: p, type: openai, simulate: { latency_ms: 10 } }
              models: [ { name: m, provider: p } ]
              routing:
                virtual_models:
                  - { name: none, targets: [] }
                  - { name: zero, strategy: weight, targets: [ { model: m, weight: 0 } ] }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "simulate")}: gateway.providers[0].simulate: only a simulated provider takes simulate options; remove it or use type: simulated",
            $"{At(yaml, "[] }")}: gateway.routing.virtual_models[0] 'none': needs at least one target; add targets: [ {{ model: NAME }} ]",
            $"{At(yaml, "{ name: zero")}: virtual model 'zero': strategy weight needs at least one target with weight > 0",
        ]);
    }

    // ---- document structure -------------------------------------------------------------------------------------

    [Fact]
    public void A_yaml_syntax_error_is_reported_with_its_position_and_nothing_else()
    {
        const string yaml = """
            gateway:
              providers: [ { name: sim, type: simulated }
            agent: { name: a }
            """;

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "agent")}: YAML syntax: cannot read the text here (an unclosed '[' or '{{' above?); check indentation, quotes and brackets at or just before this position");
    }

    [Fact]
    public void A_yaml_syntax_error_drops_the_parser_position_text_from_the_message()
    {
        const string yaml = """
            agent:
              name: a: b
            """;

        var result = Load(yaml);

        result.Fleet.ShouldBeNull();
        var error = result.Errors.ShouldHaveSingleItem();
        error.ToString().ShouldStartWith($"{At(yaml, ": b")}: ");
        error.Message.ShouldBe("YAML syntax: While scanning a plain scalar value, found invalid mapping; check indentation, quotes and brackets at or just before this position");
    }

    [Fact]
    public void An_unterminated_quote_is_reported_where_the_quote_opens()
    {
        const string yaml = """
            agent:
              name: "a
              owner: team
            """;

        SingleError(yaml).ShouldStartWith($"{At(yaml, "\"a")}: YAML syntax: ");
    }

    [Fact]
    public void A_duplicate_key_is_a_syntax_error_at_the_second_key()
    {
        const string yaml = """
            agent:
              name: a
              owner: team
              name: b
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "name", 2)}: YAML syntax: Duplicate key name; a key appears once per mapping; merge or remove one");
    }

    [Fact]
    public void A_second_gateway_document_is_an_error()
    {
        const string yaml = """
            gateway:
              providers: [ { name: sim, type: simulated } ]
            ---
            gateway:
              providers: [ { name: sim2, type: simulated } ]
            """;

        SingleError(yaml).ShouldBe(
            $"{At(yaml, "gateway", 2)}: gateway: declared more than once (first at {At(yaml, "gateway")}); the fleet has one gateway section, merge them");
    }

    [Fact]
    public void List_and_single_forms_mixed_up_get_a_hint()
    {
        const string yaml = """
            agent:
              - { name: a, owner: team }
            ---
            agents: { name: b, owner: team }
            ---
            mcp_server: [ { name: s, url: "https://mcp.example" } ]
            ---
            mcp_servers: { name: t, url: "https://mcp.example" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "- { name: a")}: agent: expected a mapping, found a list: for several agents write agents: [...] or one agent: per document",
            $"{At(yaml, "{ name: b")}: agents: expected a list (- item per entry), found a mapping; for a single agent write agent:",
            $"{At(yaml, "[ { name: s")}: mcp_server: expected a mapping, found a list: for several servers write mcp_servers: [...] or one mcp_server: per document",
            $"{At(yaml, "{ name: t")}: mcp_servers: expected a list (- item per entry), found a mapping; for a single server write mcp_server:",
        ]);
    }

    [Fact]
    public void A_document_that_is_not_a_mapping_is_an_error()
    {
        const string yaml = """
            agent: { name: a, owner: team }
            ---
            - just
            - a list
            """;

        SingleError(yaml).ShouldBe($"{At(yaml, "- just")}: a fleet document: expected a mapping (key: value pairs), found a list");
    }

    // ---- all at once --------------------------------------------------------------------------------------------

    [Fact]
    public void Every_error_is_reported_at_once_in_file_order()
    {
        const string yaml = """
            gateway:
              providers:
                - { name: openai, type: openia, api_key: "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789" }
              models:
                - { name: gpt-4o-mini, provider: openai, price: { input_per_million: cheap } }
              routing:
                virtual_model: triage-default
                retries: { attempts: 2, on_status_codes: ["429","500"] }
              budgets:
                - { applies_per: agent, limit: 50/fortnight }
            ---
            agent:
              name: bug-report-triage
              owner: platform-team
              model: triage-default
              skills: [triage-runbook]
              harness: { max_steps: 60, max_tokens_per_run: 1_500_000, max_stepz: 3 }
              trigger: { schedule: "0 6 * * 8" }
            """;

        Errors(yaml).ShouldBe([
            $"{At(yaml, "openia")}: gateway.providers[0].type: 'openia' is not one of openai, anthropic, simulated",
            $"{At(yaml, "\"sk-proj")}: gateway.providers[0].api_key: literal credentials are not allowed in the fleet file; put the value in an environment variable and write \"${{env:NAME}}\" here",
            $"{At(yaml, "cheap")}: gateway.models[0].price.input_per_million: expected a number, found 'cheap'",
            $"{At(yaml, "triage-default")}: gateway.routing.virtual_model: 'triage-default' is neither a virtual model nor a model (declared: gpt-4o-mini); declare it or fix the name",
            $"{At(yaml, "50/fortnight")}: gateway.budgets[0].limit: '50/fortnight' is not a budget; write USD/WINDOW such as 50/day (windows: minute, hour, day, week, month)",
            $"{At(yaml, "triage-default", 2)}: agent 'bug-report-triage': model 'triage-default' is neither a virtual model nor a model (declared: gpt-4o-mini); declare it under gateway or fix the name",
            $"{At(yaml, "triage-runbook")}: agent.skills: 'triage-runbook' is not pinned; write triage-runbook@VERSION (e.g. triage-runbook@v1) so that an edit cannot reach this loop unreviewed",
            $"{At(yaml, "max_stepz")}: agent.harness.max_stepz: unknown key; did you mean 'max_steps'? (known: max_cost_per_run, max_steps, max_tokens_per_run, on_denied, stuck_after, timeout_seconds)",
            Errors(yaml)[^1],
        ]);
        Errors(yaml)[^1].ShouldStartWith($"{At(yaml, "\"0 6")}: agent.trigger.schedule: '0 6 * * 8' is not a five-field cron expression");
    }

    [Fact]
    public void Errors_use_one_based_lines_and_columns()
    {
        const string yaml = "bogus: 1";

        var error = Load(yaml).Errors.ShouldHaveSingleItem();

        error.Location.ShouldBe(new SourceLocation(FileName, 1, 1));
    }

    // ---- files --------------------------------------------------------------------------------------------------

    [Fact]
    public void LoadFile_MissingFile_ReportsItAtLineOne()
    {
        var path = Path.Combine(Path.GetTempPath(), $"flotilla-missing-{Guid.NewGuid():N}.yaml");

        var error = FleetLoader.LoadFile(path).Errors.ShouldHaveSingleItem();

        error.Location.ShouldBe(new SourceLocation(path, 1, 1));
        error.Message.ShouldStartWith("cannot read the fleet file: ");
    }

    [Fact]
    public void LoadFile_InvalidFile_NamesThePathInEveryError()
    {
        var path = Path.Combine(Path.GetTempPath(), $"flotilla-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "agent: { name: a }\nagnet: {}\n");
        try
        {
            FleetLoader.LoadFile(path).Errors.Select(e => e.ToString()).ShouldBe([
                $"{path}:1:8: agent.owner is required; add owner: … to agent",
                $"{path}:2:1: agnet: unknown key; did you mean 'agent'? (known: agent, agents, gateway, mcp_server, mcp_servers)",
            ]);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
