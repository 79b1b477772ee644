using System.Text;
using System.Text.Json;
using Flotilla.Gateway.Errors;
using Flotilla.Gateway.Protocol;

namespace Flotilla.Gateway.Tests.Protocol;

public sealed class ChatRequestTests
{
    private const string Messages = """[{"role":"user","content":"hi"}]""";

    private static ChatRequest Chat(string json) => ChatRequest.ParseChat(Encoding.UTF8.GetBytes(json));

    private static GatewayException Rejected(string json) => Should.Throw<GatewayException>(() => Chat(json));

    private static string Rewritten(ChatRequest request, string upstreamModel, bool forceUsage) =>
        Encoding.UTF8.GetString(request.RewriteForUpstream(upstreamModel, forceUsage).ToArray());

    [Fact]
    public void The_fields_the_gateway_routes_on_are_read()
    {
        var request = Chat($$$"""
            {"model":"fast","messages":{{{Messages}}},"stream":true,"stream_options":{"include_usage":true},"max_tokens":256,
             "tools":[{"type":"function","function":{"name":"f"}}]}
            """);

        request.Model.ShouldBe("fast");
        request.Stream.ShouldBeTrue();
        request.HasStreamOptions.ShouldBeTrue();
        request.IncludeUsage.ShouldBeTrue();
        request.MaxTokens.ShouldBe(256);
        request.HasTools.ShouldBeTrue();
    }

    [Fact]
    public void Absent_optional_fields_read_as_defaults()
    {
        var request = Chat($$"""{"messages":{{Messages}}}""");

        request.Model.ShouldBeNull();
        request.ModelToken.Length.ShouldBe(0);
        request.Stream.ShouldBeFalse();
        request.HasStreamOptions.ShouldBeFalse();
        request.IncludeUsage.ShouldBeFalse();
        request.MaxTokens.ShouldBeNull();
        request.HasTools.ShouldBeFalse();
    }

    [Fact]
    public void Max_completion_tokens_is_read_as_max_tokens()
    {
        Chat($$"""{"messages":{{Messages}},"max_completion_tokens":77}""").MaxTokens.ShouldBe(77);
    }

    [Fact]
    public void Include_usage_false_is_not_a_request_for_usage()
    {
        var request = Chat($$$"""{"messages":{{{Messages}}},"stream":true,"stream_options":{"include_usage":false}}""");

        request.HasStreamOptions.ShouldBeTrue();
        request.IncludeUsage.ShouldBeFalse();
    }

    [Fact]
    public void Fields_with_the_same_name_inside_messages_are_not_mistaken_for_top_level_ones()
    {
        var request = Chat("""{"messages":[{"role":"user","content":"hi","model":"inner","stream":true,"max_tokens":5}],"model":"outer"}""");

        request.Model.ShouldBe("outer");
        request.Stream.ShouldBeFalse();
        request.MaxTokens.ShouldBeNull();
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"text\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void A_body_that_is_not_an_object_is_rejected(string json)
    {
        var error = Rejected(json);

        error.Status.ShouldBe(400);
        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]")]
    [InlineData("{\"messages\":[{\"role\":\"user\",}]}")]
    [InlineData("{'messages':[]}")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]} // comment")]
    public void Invalid_json_is_rejected_as_invalid_json(string json)
    {
        var error = Rejected(json);

        error.Status.ShouldBe(400);
        error.Code.ShouldBe(ErrorCodes.InvalidJson);
    }

    [Theory]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]} x")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]}{}")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]} {\"model\":\"m\"}")]
    [InlineData("{\"messages\":[{\"role\":\"user\"}]}]")]
    public void Content_after_the_object_is_rejected_as_invalid_json(string json)
    {
        var error = Rejected(json);

        error.Status.ShouldBe(400);
        error.Code.ShouldBe(ErrorCodes.InvalidJson);
    }

    [Fact]
    public void Whitespace_around_the_object_is_accepted()
    {
        Chat($$"""  {"model":"m","messages":{{Messages}}}  """ + "\r\n").Model.ShouldBe("m");
    }

    [Fact]
    public void Missing_messages_are_rejected_naming_the_field()
    {
        var error = Rejected("""{"model":"m"}""");

        error.Status.ShouldBe(400);
        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("messages");
        error.Message.ShouldBe("'messages' is required.");
    }

    [Fact]
    public void Empty_messages_are_rejected()
    {
        var error = Rejected("""{"model":"m","messages":[]}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("messages");
        error.Message.ShouldBe("'messages' must contain at least one message.");
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("\"hi\"")]
    [InlineData("null")]
    [InlineData("3")]
    public void Messages_that_are_not_an_array_are_rejected(string messages)
    {
        var error = Rejected($$"""{"messages":{{messages}}}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("messages");
    }

    [Fact]
    public void A_message_that_is_not_an_object_is_rejected_with_its_index()
    {
        var error = Rejected("""{"messages":[{"role":"user","content":"a"},"b"]}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("messages[1]");
    }

    [Theory]
    [InlineData("\"true\"")]
    [InlineData("1")]
    [InlineData("{}")]
    public void Stream_of_the_wrong_type_is_rejected(string stream)
    {
        var error = Rejected($$"""{"messages":{{Messages}},"stream":{{stream}}}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("stream");
    }

    [Fact]
    public void Stream_null_means_not_streaming()
    {
        Chat($$"""{"messages":{{Messages}},"stream":null}""").Stream.ShouldBeFalse();
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("1.5")]
    [InlineData("\"100\"")]
    [InlineData("99999999999999999999")]
    [InlineData("true")]
    public void Max_tokens_that_is_not_a_positive_integer_is_rejected(string maxTokens)
    {
        var error = Rejected($$"""{"messages":{{Messages}},"max_tokens":{{maxTokens}}}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("max_tokens");
    }

    [Fact]
    public void A_model_that_is_not_a_string_is_rejected()
    {
        var error = Rejected($$"""{"model":7,"messages":{{Messages}}}""");

        error.Code.ShouldBe(ErrorCodes.InvalidRequest);
        error.Param.ShouldBe("model");
    }

    [Fact]
    public void Embeddings_need_input_instead_of_messages()
    {
        var request = ChatRequest.ParseEmbeddings("""{"model":"embed","input":["a","b"]}"""u8.ToArray());

        request.Model.ShouldBe("embed");
        Should.Throw<GatewayException>(() => ChatRequest.ParseEmbeddings("""{"model":"embed"}"""u8.ToArray())).Param.ShouldBe("input");
        Should.Throw<GatewayException>(() => ChatRequest.ParseEmbeddings("""{"input":5}"""u8.ToArray())).Param.ShouldBe("input");
    }

    [Fact]
    public void Rewriting_replaces_only_the_model_and_keeps_every_other_byte()
    {
        const string before = """{ "temperature" : 0.5, "model" :  "fast",  "messages":[{"role":"user","content":"model \"fast\""}] }""";
        const string after = """{ "temperature" : 0.5, "model" :  "gpt-4o-mini-2024",  "messages":[{"role":"user","content":"model \"fast\""}] }""";

        var body = Rewritten(Chat(before), "gpt-4o-mini-2024", forceUsage: false);

        body.ShouldBe(after);
        JsonDocument.Parse(body).RootElement.GetProperty("model").GetString().ShouldBe("gpt-4o-mini-2024");
    }

    [Fact]
    public void Forced_usage_is_added_when_the_caller_sent_no_stream_options()
    {
        var request = Chat($$"""{"model":"fast","stream":true,"messages":{{Messages}}}""");

        var body = Rewritten(request, "up", forceUsage: true);

        body.ShouldBe($$"""{"stream_options":{"include_usage":true},"model":"up","stream":true,"messages":{{Messages}}}""");
        using var document = JsonDocument.Parse(body);
        document.RootElement.GetProperty("stream_options").GetProperty("include_usage").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public void Forced_usage_keeps_other_stream_options_and_sets_include_usage()
    {
        var request = Chat($$"""{"model":"fast","stream":true,"stream_options":{"include_obfuscation":false},"messages":{{Messages}}}""");

        var body = Rewritten(request, "up", forceUsage: true);

        using var document = JsonDocument.Parse(body);
        var root = document.RootElement;
        root.GetProperty("model").GetString().ShouldBe("up");
        root.GetProperty("stream").GetBoolean().ShouldBeTrue();
        root.GetProperty("stream_options").GetProperty("include_usage").GetBoolean().ShouldBeTrue();
        root.GetProperty("stream_options").GetProperty("include_obfuscation").GetBoolean().ShouldBeFalse();
        root.GetProperty("messages").GetRawText().ShouldBe(Messages);
        root.EnumerateObject().Count(p => p.Name == "stream_options").ShouldBe(1);
    }

    [Fact]
    public void Forced_usage_turns_an_explicit_include_usage_false_into_true()
    {
        var request = Chat($$"""{"model":"fast","stream":true,"stream_options":{"include_usage":false},"messages":{{Messages}}}""");

        using var document = JsonDocument.Parse(Rewritten(request, "up", forceUsage: true));

        document.RootElement.GetProperty("stream_options").GetProperty("include_usage").GetBoolean().ShouldBeTrue();
        document.RootElement.GetProperty("model").GetString().ShouldBe("up");
    }

    [Fact]
    public void Forced_usage_leaves_a_body_that_already_asks_for_usage_unchanged_but_for_the_model()
    {
        var request = Chat($$"""{"model":"fast","stream":true,"stream_options":{"include_usage":true},"messages":{{Messages}}}""");

        Rewritten(request, "up", forceUsage: true)
            .ShouldBe($$"""{"model":"up","stream":true,"stream_options":{"include_usage":true},"messages":{{Messages}}}""");
    }

    [Fact]
    public void Forced_usage_replaces_stream_options_null_instead_of_adding_a_second_key()
    {
        var request = Chat($$"""{"model":"fast","stream":true,"stream_options":null,"messages":{{Messages}}}""");

        using var document = JsonDocument.Parse(Rewritten(request, "up", forceUsage: true));

        var options = document.RootElement.EnumerateObject().Where(p => p.Name == "stream_options").ToList();
        options.Count.ShouldBe(1);
        options[0].Value.GetProperty("include_usage").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public void A_body_without_a_model_gets_one()
    {
        var request = Chat($$"""{"messages":{{Messages}},"n":1}""");

        Rewritten(request, "up", forceUsage: false).ShouldBe($$"""{"model":"up","messages":{{Messages}},"n":1}""");
    }

    [Fact]
    public void A_body_without_a_model_gets_one_and_forced_usage()
    {
        var request = Chat($$"""{"stream":true,"messages":{{Messages}}}""");

        Rewritten(request, "up", forceUsage: true)
            .ShouldBe($$"""{"stream_options":{"include_usage":true},"model":"up","stream":true,"messages":{{Messages}}}""");
    }

    [Fact]
    public void A_null_model_is_replaced_rather_than_duplicated()
    {
        var request = Chat($$"""{"model":null,"messages":{{Messages}}}""");

        request.Model.ShouldBeNull();
        var body = Rewritten(request, "up", forceUsage: false);

        using var document = JsonDocument.Parse(body);
        var models = document.RootElement.EnumerateObject().Where(p => p.Name == "model").ToList();
        models.Count.ShouldBe(1);
        models[0].Value.GetString().ShouldBe("up");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Leading_whitespace_before_the_object_still_rewrites_to_valid_json(bool withModel)
    {
        var json = withModel ? $$"""{"model":"fast","stream":true,"messages":{{Messages}}}""" : $$"""{"stream":true,"messages":{{Messages}}}""";
        var request = Chat("\n  " + json);

        foreach (var forceUsage in new[] { false, true })
        {
            var body = Rewritten(request, "up", forceUsage);

            using var document = JsonDocument.Parse(body);
            document.RootElement.GetProperty("model").GetString().ShouldBe("up");
            document.RootElement.GetProperty("messages").GetRawText().ShouldBe(Messages);
            document.RootElement.TryGetProperty("stream_options", out _).ShouldBe(forceUsage);
        }
    }

    [Theory]
    [InlineData("we\"ird\\model")]
    [InlineData("line\nbreak\ttab")]
    [InlineData("<script>&'")]
    [InlineData("modèle-日本-🚀")]
    [InlineData("")]
    public void Odd_model_names_are_escaped_in_every_rewrite(string upstreamModel)
    {
        var withModel = Chat($$"""{"model":"fast","stream":true,"messages":{{Messages}}}""");
        var withoutModel = Chat($$"""{"stream":true,"messages":{{Messages}}}""");
        var withOptions = Chat($$"""{"model":"fast","stream":true,"stream_options":{},"messages":{{Messages}}}""");

        foreach (var (request, forceUsage) in new[] { (withModel, false), (withModel, true), (withoutModel, false), (withoutModel, true), (withOptions, true) })
        {
            using var document = JsonDocument.Parse(Rewritten(request, upstreamModel, forceUsage));

            document.RootElement.GetProperty("model").GetString().ShouldBe(upstreamModel);
        }
    }

    [Fact]
    public void A_model_name_written_with_escapes_is_read_unescaped_and_replaced_whole()
    {
        var request = Chat($$"""{"model":"a\u0062c\"d","messages":{{Messages}}}""");

        request.Model.ShouldBe("abc\"d");
        Rewritten(request, "x", forceUsage: false).ShouldBe($$"""{"model":"x","messages":{{Messages}}}""");
    }

    [Fact]
    public void The_rewritten_segments_report_the_length_of_the_body_they_form()
    {
        var segments = Chat($$"""{"model":"fast","stream":true,"messages":{{Messages}}}""").RewriteForUpstream("upstream", forceUsage: true);

        segments.Length.ShouldBe(segments.ToArray().Length);
        segments.Length.ShouldBe($$"""{"stream_options":{"include_usage":true},"model":"upstream","stream":true,"messages":{{Messages}}}""".Length);
    }
}
