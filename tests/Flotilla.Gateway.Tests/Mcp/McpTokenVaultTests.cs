using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Flotilla.Mcp.Calls;
using Flotilla.Mcp.Credentials;
using Flotilla.Storage.Mcp;
using Flotilla.Storage.Sqlite;
using Flotilla.Testing;
using Microsoft.Data.Sqlite;
using ModelContextProtocol;

namespace Flotilla.Gateway.Tests.Mcp;

/// <summary>Outbound auth per user: each human's own token, sealed in the vault, presented only on that human's calls.</summary>
public sealed class McpTokenVaultTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    static McpTokenVaultTests()
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(TokenVault.KeyVariable)))
        {
            Environment.SetEnvironmentVariable(TokenVault.KeyVariable, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        }
    }

    [Fact]
    public async Task A_per_user_server_is_called_with_the_callers_own_token_and_refuses_users_without_one()
    {
        await using var linear = await FakeMcpServer.StartAsync();
        var yaml = """
            agent: { name: writer, owner: docs, mcp_servers: [linear] }
            """ + "\n" + McpHost.Server("linear", linear, "auth: { type: per_user }");
        await using var mcp = await McpHost.StartAsync(yaml, ready: 0);

        var servers = await mcp.Host.Admin.GetFromJsonAsync<JsonElement>("/api/mcp/servers", Ct);
        servers.GetProperty("data")[0].GetProperty("failure").GetString()!.ShouldContain("no user has a token for it yet");

        using (var put = await mcp.Host.Admin.PutAsJsonAsync("/api/mcp/tokens/linear/alice", new { token = "alice-token-0123456789" }, Ct))
        {
            put.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        }

        await mcp.WaitForToolsAsync(1);
        var alice = await mcp.ConnectAsync("writer", new Dictionary<string, string> { ["X-Flotilla-User"] = "alice" });
        var bob = await mcp.ConnectAsync("writer", new Dictionary<string, string> { ["X-Flotilla-User"] = "bob" });
        var nobody = await mcp.ConnectAsync("writer");
        var read = new Dictionary<string, object?> { ["path"] = "a" };

        (await alice.CallToolAsync("linear__read_file", read, cancellationToken: Ct)).IsError.ShouldNotBe(true);
        var noToken = await Should.ThrowAsync<McpProtocolException>(() => bob.CallToolAsync("linear__read_file", read, cancellationToken: Ct).AsTask());
        ((int)noToken.ErrorCode).ShouldBe(McpErrors.Forbidden);
        noToken.Message.ShouldEndWith("user 'bob' has no token for mcp server 'linear'; an operator stores one with PUT /api/mcp/tokens/linear/bob");
        var noUser = await Should.ThrowAsync<McpProtocolException>(() => nobody.CallToolAsync("linear__read_file", read, cancellationToken: Ct).AsTask());
        noUser.Message.ShouldContain("send X-Flotilla-User");

        linear.Received.Where(r => r.Tool == "read_file").Select(r => r.Authorization).ShouldBe(["Bearer alice-token-0123456789"]);

        var listed = await mcp.Host.Admin.GetStringAsync("/api/mcp/tokens", Ct);
        listed.ShouldContain("\"user\":\"alice\"");
        listed.ShouldNotContain("alice-token");
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(mcp.Host.DataDirectory, "flotilla.db")};Mode=ReadOnly");
        await connection.OpenAsync(Ct);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT sealed FROM mcp_tokens";
        var sealedToken = (string)(await select.ExecuteScalarAsync(Ct))!;
        sealedToken.ShouldNotContain("alice-token");
        Convert.FromBase64String(sealedToken).AsSpan().IndexOf("alice-token"u8).ShouldBe(-1);
    }

    [Fact]
    public async Task A_sealed_token_opens_only_in_its_own_slot_and_only_with_its_key()
    {
        var directory = Path.Combine(Path.GetTempPath(), "flotilla-vault-tests", Guid.NewGuid().ToString("N"));
        var store = new SqliteMcpTokenStore(new SqliteDatabase(directory));
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var vault = new TokenVault(store, TimeProvider.System, key);
        await vault.PutAsync("linear", "alice", "alice-secret", Ct);
        (await vault.GetAsync("linear", "alice", Ct)).ShouldBe("alice-secret");

        var alices = (await store.GetAsync("linear", "alice", Ct))!;
        await store.PutAsync(alices with { User = "mallory" }, Ct);
        (await Should.ThrowAsync<TokenVaultException>(() => vault.GetAsync("linear", "mallory", Ct))).Message.ShouldContain("does not open");

        var otherKey = new TokenVault(store, TimeProvider.System, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)));
        await Should.ThrowAsync<TokenVaultException>(() => otherKey.GetAsync("linear", "alice", Ct));
        var keyless = new TokenVault(store, TimeProvider.System, null);
        (await Should.ThrowAsync<TokenVaultException>(() => keyless.PutAsync("linear", "bob", "x", Ct))).Message.ShouldContain(TokenVault.KeyVariable);
        (await Should.ThrowAsync<TokenVaultException>(() => new TokenVault(store, TimeProvider.System, "c2hvcnQ=").PutAsync("linear", "bob", "x", Ct))).Message.ShouldContain("32 bytes");
    }
}
