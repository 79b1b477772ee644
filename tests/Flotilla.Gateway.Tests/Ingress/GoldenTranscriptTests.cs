using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Flotilla.Gateway.Tests.EndToEnd;
using Flotilla.Testing;

namespace Flotilla.Gateway.Tests.Ingress;

/// <summary>
/// Golden transcripts: a two-turn tool conversation (the model calls a tool, the caller sends its result, the model answers)
/// in each ingress format (Chat Completions, Anthropic Messages, OpenAI Responses) against each target format (Anthropic,
/// OpenAI-compatible, simulated), streamed and not. Everything on the wire is compared, field by field, with the recorded
/// transcript in <c>Golden/</c>: what the caller sent, what the upstream received, and what the caller got back. A mapping
/// change in either direction fails here; if it is intended, re-record with <c>FLOTILLA_RECORD_GOLDEN=1</c> and review the diff.
/// </summary>
public sealed partial class GoldenTranscriptTests(GoldenTranscriptTests.Upstreams upstreams) : IClassFixture<GoldenTranscriptTests.Upstreams>
{
    private const string Thinking = "The user wants the weather; I should call the tool.";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (var ingress in new[] { "chat", "messages", "responses" })
        {
            foreach (var target in new[] { "anthropic", "openai", "simulated" })
            {
                data.Add(ingress, target, false);
                data.Add(ingress, target, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_tool_conversation_matches_its_recorded_transcript(string ingress, string target, bool stream)
    {
        var transcript = await RecordAsync(ingress, target, stream);
        var path = Path.Combine(GoldenDirectory(), $"{ingress}-to-{target}{(stream ? "-stream" : "")}.txt");
        if (Environment.GetEnvironmentVariable("FLOTILLA_RECORD_GOLDEN") == "1")
        {
            await File.WriteAllTextAsync(path, transcript, Ct);
            return;
        }

        File.Exists(path).ShouldBeTrue($"no recorded transcript at {path}; record it with FLOTILLA_RECORD_GOLDEN=1 and review it");
        var expected = (await File.ReadAllTextAsync(path, Ct)).ReplaceLineEndings("\n");
        if (transcript != expected)
        {
            // Name the first line that differs: the whole transcript is long.
            var actualLines = transcript.Split('\n');
            var expectedLines = expected.Split('\n');
            var at = Enumerable.Range(0, Math.Min(actualLines.Length, expectedLines.Length)).FirstOrDefault(i => actualLines[i] != expectedLines[i], Math.Min(actualLines.Length, expectedLines.Length));
            var section = expectedLines.Take(at + 1).LastOrDefault(l => l.StartsWith("== ", StringComparison.Ordinal)) ?? "";
            throw new ShouldAssertException(
                $"{Path.GetFileName(path)} differs at line {at + 1} ({section}):\n  expected: {Line(expectedLines, at)}\n  actual:   {Line(actualLines, at)}");
        }
    }

    private static string Line(string[] lines, int at) => at < lines.Length ? lines[at] : "(end of transcript)";

    private async Task<string> RecordAsync(string ingress, string target, bool stream)
    {
        var model = target switch { "anthropic" => "claude", "openai" => "gpt", _ => "sim" };
        var fake = target switch { "anthropic" => upstreams.Anthropic, "openai" => upstreams.OpenAI, _ => null };
        var log = new StringBuilder();
        var ids = new IdNormaliser();
        var seen = fake?.Requests.Count ?? 0;

        // Turn 1: the model is offered a tool and calls it.
        fake?.Enqueue(UpstreamBehaviour.Answer(thinking: Thinking));
        var first = FirstRequest(ingress, model, stream);
        var firstAnswer = await SendAsync(ingress, first);
        Append(log, ids, "turn 1: caller sends", first);
        seen = AppendUpstream(log, ids, fake, seen);
        Append(log, ids, "turn 1: caller receives", firstAnswer);

        // Turn 2: the caller sends the tool's result and the model answers.
        fake?.Enqueue(UpstreamBehaviour.Answer());
        var second = SecondRequest(ingress, model, stream, first, firstAnswer);
        var secondAnswer = await SendAsync(ingress, second);
        Append(log, ids, "turn 2: caller sends", second);
        AppendUpstream(log, ids, fake, seen);
        Append(log, ids, "turn 2: caller receives", secondAnswer);
        return log.ToString();
    }

    private static readonly JsonObject WeatherSchema = new()
    {
        ["type"] = "object",
        ["properties"] = new JsonObject { ["city"] = new JsonObject { ["type"] = "string" }, ["days"] = new JsonObject { ["type"] = "integer" } },
        ["required"] = new JsonArray("city"),
    };

    private static JsonObject FirstRequest(string ingress, string model, bool stream) => ingress switch
    {
        "messages" => new JsonObject
        {
            ["model"] = model,
            ["max_tokens"] = 256,
            ["system"] = "You are terse.",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Weather in Paris?" }),
            ["tools"] = new JsonArray(new JsonObject { ["name"] = "get_weather", ["description"] = "Current weather", ["input_schema"] = WeatherSchema.DeepClone() }),
            ["stream"] = stream,
        },
        "responses" => new JsonObject
        {
            ["model"] = model,
            ["instructions"] = "You are terse.",
            ["input"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Weather in Paris?" }),
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "get_weather", ["description"] = "Current weather", ["parameters"] = WeatherSchema.DeepClone() }),
            ["max_output_tokens"] = 256,
            ["stream"] = stream,
        },
        _ => new JsonObject
        {
            ["model"] = model,
            ["max_tokens"] = 256,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = "You are terse." },
                new JsonObject { ["role"] = "user", ["content"] = "Weather in Paris?" }),
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject { ["name"] = "get_weather", ["description"] = "Current weather", ["parameters"] = WeatherSchema.DeepClone() },
            }),
            ["stream"] = stream,
        },
    };

    /// <summary>The follow-up a client of that format sends, built from what it received.</summary>
    private static JsonObject SecondRequest(string ingress, string model, bool stream, JsonObject first, string answer)
    {
        var next = (JsonObject)first.DeepClone();
        switch (ingress)
        {
            case "messages":
                var content = stream ? MessagesContentFromEvents(answer) : JsonNode.Parse(answer)!["content"]!.AsArray();
                var toolUse = content.First(b => (string?)b!["type"] == "tool_use")!;
                next["messages"]!.AsArray().Add(new JsonObject { ["role"] = "assistant", ["content"] = content.DeepClone() });
                next["messages"]!.AsArray().Add(new JsonObject
                {
                    ["role"] = "user",
                    ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_result", ["tool_use_id"] = (string?)toolUse["id"], ["content"] = "18C and sunny" }),
                });
                break;
            case "responses":
                var response = stream ? JsonNode.Parse(SseData(answer).Last(d => (string?)JsonNode.Parse(d)!["type"] == "response.completed"))!["response"]! : JsonNode.Parse(answer)!;
                var call = response["output"]!.AsArray().First(i => (string?)i!["type"] == "function_call")!;
                next["previous_response_id"] = (string?)response["id"];
                next["input"] = new JsonArray(new JsonObject { ["type"] = "function_call_output", ["call_id"] = (string?)call["call_id"], ["output"] = "18C and sunny" });
                break;
            default:
                var (id, name, arguments) = stream ? ChatToolCallFromChunks(answer) : ChatToolCall(answer);
                next["messages"]!.AsArray().Add(new JsonObject
                {
                    ["role"] = "assistant",
                    ["content"] = null,
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = id,
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = name, ["arguments"] = arguments },
                    }),
                });
                next["messages"]!.AsArray().Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = id, ["content"] = "18C and sunny" });
                break;
        }

        return next;
    }

    private async Task<string> SendAsync(string ingress, JsonObject body)
    {
        var path = ingress switch { "messages" => "/v1/messages", "responses" => "/v1/responses", _ => "/v1/chat/completions" };
        using var response = await upstreams.Host.Http.PostAsync(path, GatewayHost.JsonContent(body.ToJsonString()), Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        ((int)response.StatusCode).ShouldBe(200, text);
        return text;
    }

    private static void Append(StringBuilder log, IdNormaliser ids, string title, JsonObject body) =>
        log.Append("== ").Append(title).Append(" ==\n").Append(ids.Json(body.ToJsonString())).Append('\n');

    private static void Append(StringBuilder log, IdNormaliser ids, string title, string answer)
    {
        log.Append("== ").Append(title).Append(" ==\n");
        if (answer.StartsWith('{'))
        {
            log.Append(ids.Json(answer)).Append('\n');
            return;
        }

        // A stream: one line per event, its name (when it has one) and its data.
        foreach (var block in answer.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string? name = null;
            foreach (var line in block.Split('\n'))
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    name = line[7..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    var data = line[6..];
                    log.Append(name is null ? "" : name + " ").Append(data == "[DONE]" ? data : ids.Json(data, indented: false)).Append('\n');
                }
            }
        }
    }

    private static int AppendUpstream(StringBuilder log, IdNormaliser ids, FakeUpstream? fake, int seen)
    {
        if (fake is null)
        {
            return 0;
        }

        var requests = fake.Requests;
        requests.Count.ShouldBe(seen + 1, "one upstream request per turn");
        var request = requests[^1];
        log.Append("== upstream receives: ").Append(request.Method).Append(' ').Append(request.Path).Append(" ==\n").Append(ids.Json(request.Body)).Append('\n');
        return requests.Count;
    }

    private static IEnumerable<string> SseData(string stream) =>
        stream.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal) && l != "data: [DONE]").Select(l => l[6..]);

    private static JsonArray MessagesContentFromEvents(string stream)
    {
        var blocks = new JsonArray();
        var json = new StringBuilder();
        foreach (var data in SseData(stream))
        {
            var e = JsonNode.Parse(data)!;
            switch ((string?)e["type"])
            {
                case "content_block_start":
                    blocks.Add(e["content_block"]!.DeepClone());
                    json.Clear();
                    break;
                case "content_block_delta":
                    var block = blocks[^1]!;
                    var delta = e["delta"]!;
                    switch ((string?)delta["type"])
                    {
                        case "text_delta": block["text"] = (string?)block["text"] + (string?)delta["text"]; break;
                        case "thinking_delta": block["thinking"] = (string?)block["thinking"] + (string?)delta["thinking"]; break;
                        case "signature_delta": block["signature"] = (string?)delta["signature"]; break;
                        case "input_json_delta": json.Append((string?)delta["partial_json"]); break;
                    }

                    break;
                case "content_block_stop" when (string?)blocks[^1]!["type"] == "tool_use":
                    blocks[^1]!["input"] = JsonNode.Parse(json.Length == 0 ? "{}" : json.ToString());
                    break;
            }
        }

        return blocks;
    }

    private static (string Id, string Name, string Arguments) ChatToolCall(string completion)
    {
        var call = JsonNode.Parse(completion)!["choices"]![0]!["message"]!["tool_calls"]![0]!;
        return ((string)call["id"]!, (string)call["function"]!["name"]!, (string)call["function"]!["arguments"]!);
    }

    private static (string Id, string Name, string Arguments) ChatToolCallFromChunks(string stream)
    {
        string? id = null, name = null;
        var arguments = new StringBuilder();
        foreach (var data in SseData(stream))
        {
            if (JsonNode.Parse(data)!["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["delta"]?["tool_calls"] is JsonArray calls)
            {
                id ??= (string?)calls[0]!["id"];
                name ??= (string?)calls[0]!["function"]?["name"];
                arguments.Append((string?)calls[0]!["function"]?["arguments"]);
            }
        }

        return (id!, name!, arguments.ToString());
    }

    private static string GoldenDirectory([CallerFilePath] string source = "") => Path.Combine(Path.GetDirectoryName(source)!, "Golden");

    /// <summary>
    /// Makes a transcript comparable across runs: every generated id (msg_, resp_, fc_, chatcmpl-, toolu_, call_) becomes a
    /// numbered placeholder in order of first appearance, and clock readings (created, created_at) become 0.
    /// </summary>
    private sealed partial class IdNormaliser
    {
        private readonly Dictionary<string, string> _ids = [];

        public string Json(string json, bool indented = true)
        {
            var node = JsonNode.Parse(json)!;
            Clocks(node);
            var text = node.ToJsonString(new JsonSerializerOptions { WriteIndented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            return GeneratedId().Replace(text, m =>
            {
                if (!_ids.TryGetValue(m.Value, out var placeholder))
                {
                    placeholder = $"{m.Groups[1].Value}<{_ids.Count(p => p.Value.StartsWith(m.Groups[1].Value + "<", StringComparison.Ordinal)) + 1}>";
                    _ids[m.Value] = placeholder;
                }

                return placeholder;
            });
        }

        private static void Clocks(JsonNode node)
        {
            if (node is JsonObject obj)
            {
                foreach (var key in new[] { "created", "created_at" })
                {
                    if (obj[key] is JsonValue)
                    {
                        obj[key] = 0;
                    }
                }

                foreach (var (_, child) in obj.ToList())
                {
                    if (child is not null)
                    {
                        Clocks(child);
                    }
                }
            }
            else if (node is JsonArray array)
            {
                foreach (var child in array)
                {
                    if (child is not null)
                    {
                        Clocks(child);
                    }
                }
            }
        }

        [GeneratedRegex("(?<=\")(msg_|resp_|fc_|chatcmpl-|call_|toolu_)(?!id\")[A-Za-z0-9_]+")]
        private static partial Regex GeneratedId();
    }

    /// <summary>One gateway in front of a fake Anthropic upstream, a fake OpenAI-compatible upstream and the simulated provider.</summary>
    public sealed class Upstreams : IAsyncLifetime
    {
        private readonly string _keyVariable = "FLOTILLA_TEST_GOLDEN_KEY_" + Guid.NewGuid().ToString("N").ToUpperInvariant();

        public FakeUpstream Anthropic { get; private set; } = null!;
        public FakeUpstream OpenAI { get; private set; } = null!;
        internal GatewayHost Host { get; private set; } = null!;

        public async ValueTask InitializeAsync()
        {
            Environment.SetEnvironmentVariable(_keyVariable, "sk-ant-golden");
            Anthropic = await FakeUpstream.StartAsync("claude");
            OpenAI = await FakeUpstream.StartAsync("gpt");
            Host = await GatewayHost.StartAsync($$"""
                gateway:
                  providers:
                    - { name: anthropic, type: anthropic, base_url: "{{Anthropic.BaseUrl}}", api_key: "${env:{{_keyVariable}}}" }
                    - { name: openai, type: openai, base_url: "{{OpenAI.BaseUrl}}" }
                    - { name: sim, type: simulated }
                  models:
                    - { name: claude, provider: anthropic, model: claude-haiku-4-5 }
                    - { name: gpt, provider: openai, model: gpt-4o-mini }
                    - { name: sim, provider: sim }
                """);
        }

        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await Anthropic.DisposeAsync();
            await OpenAI.DisposeAsync();
            Environment.SetEnvironmentVariable(_keyVariable, null);
        }
    }
}
