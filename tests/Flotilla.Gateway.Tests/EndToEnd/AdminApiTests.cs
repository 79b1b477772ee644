using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace Flotilla.Gateway.Tests.EndToEnd;

/// <summary>The admin API takes the admin token only; keys it issues work on /v1 until revoked.</summary>
public sealed class AdminApiTests
{
    private const string Fleet = """
        gateway:
          providers:
            - { name: sim, type: simulated }
          models:
            - { name: sim-chat, provider: sim }
        """;

    private const string Good = """{"model":"sim-chat","messages":[{"role":"user","content":"hello"}]}""";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_agent_key_is_refused_on_the_admin_api_with_403()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);

        using var response = await host.Http.GetAsync("/api/traces", Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        var error = await GatewayHost.ErrorAsync(response);
        error.GetProperty("code").GetString().ShouldBe("agent_key_not_allowed");
        error.GetProperty("type").GetString().ShouldBe("permission_error");
    }

    [Fact]
    public async Task The_admin_api_without_a_token_or_with_a_wrong_one_is_401()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);
        using var client = new HttpClient { BaseAddress = host.Server.Address };

        using var missing = await client.GetAsync("/api/traces", Ct);
        missing.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await GatewayHost.ErrorAsync(missing)).GetProperty("code").GetString().ShouldBe("missing_admin_token");

        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-the-admin-token");
        using var wrong = await client.GetAsync("/api/traces", Ct);
        wrong.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await GatewayHost.ErrorAsync(wrong)).GetProperty("code").GetString().ShouldBe("invalid_admin_token");
    }

    [Fact]
    public async Task A_key_for_an_agent_not_in_the_fleet_is_refused_with_404()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);

        using var response = await host.Admin.PostAsync("/api/keys", GatewayHost.JsonContent("""{"agent":"ghost"}"""), Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        var error = await GatewayHost.ErrorAsync(response);
        error.GetProperty("code").GetString().ShouldBe("agent_not_found");
        error.GetProperty("message").GetString()!.ShouldContain(GatewayHost.Agent);
    }

    [Fact]
    public async Task An_issued_key_works_on_the_gateway_until_it_is_revoked()
    {
        await using var host = await GatewayHost.StartAsync(Fleet);

        using var issued = await host.Admin.PostAsync("/api/keys", GatewayHost.JsonContent($$"""{"agent":"{{GatewayHost.Agent}}"}"""), Ct);
        issued.StatusCode.ShouldBe(HttpStatusCode.Created);
        var record = await GatewayHost.ReadJsonAsync(issued);
        var key = record.GetProperty("key").GetString()!;
        var id = record.GetProperty("id").GetString()!;
        record.GetProperty("agent").GetString().ShouldBe(GatewayHost.Agent);
        key.ShouldStartWith(record.GetProperty("prefix").GetString()!);

        using var client = new HttpClient { BaseAddress = host.Server.Address };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using (var works = await client.PostAsync("/v1/chat/completions", GatewayHost.JsonContent(Good), Ct))
        {
            works.StatusCode.ShouldBe(HttpStatusCode.OK);
        }

        var list = await host.Admin.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/keys", Ct);
        list.GetProperty("data").EnumerateArray().ShouldContain(k => k.GetProperty("id").GetString() == id);
        list.GetRawText().ShouldNotContain(key);

        using (var revoked = await host.Admin.DeleteAsync($"/api/keys/{id}", Ct))
        {
            revoked.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        }

        using var refused = await client.PostAsync("/v1/chat/completions", GatewayHost.JsonContent(Good), Ct);
        refused.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await GatewayHost.ErrorAsync(refused)).GetProperty("code").GetString().ShouldBe("invalid_api_key");

        // The other key of the same agent is untouched.
        using var other = await host.PostChatAsync(Good);
        other.StatusCode.ShouldBe(HttpStatusCode.OK);
    }
}
