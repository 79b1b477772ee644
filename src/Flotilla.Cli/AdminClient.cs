using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Flotilla.Server.Hosting;

namespace Flotilla.Cli;

/// <summary>Talks to a running server's admin API with the admin token.</summary>
internal sealed class AdminClient(Uri server, string token) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The token from FLOTILLA_ADMIN_TOKEN, else the one a local server generated in its data directory.</summary>
    public static string? FindToken(string dataDirectory)
    {
        var token = Environment.GetEnvironmentVariable(AdminToken.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(token))
        {
            return token.Trim();
        }

        var path = Path.Combine(dataDirectory, AdminToken.FileName);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    public async Task<JsonDocument> SendAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is string json)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await SendCoreAsync(request, cancellationToken);
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                var message = text;
                try
                {
                    using var error = JsonDocument.Parse(text);
                    message = error.RootElement.GetProperty("error").GetProperty("message").GetString() ?? text;
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
                {
                }

                throw new CliException($"{(int)response.StatusCode} {response.ReasonPhrase}: {message}");
            }

            return JsonDocument.Parse(text.Length == 0 ? "{}" : text);
        }
    }

    /// <summary>
    /// Sends <paramref name="text"/> as the body and returns the status with the JSON answer, without throwing on a 4xx
    /// (a refused fleet carries its errors in the answer).
    /// </summary>
    public async Task<(int Status, JsonDocument Json)> SendTextAsync(HttpMethod method, string path, string text, string mediaType,
        IReadOnlyDictionary<string, string>? headers, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(text, Encoding.UTF8, mediaType) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await SendCoreAsync(request, cancellationToken);
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            try
            {
                return ((int)response.StatusCode, JsonDocument.Parse(body.Length == 0 ? "{}" : body));
            }
            catch (JsonException)
            {
                throw new CliException($"{(int)response.StatusCode} {response.ReasonPhrase}: {body}");
            }
        }
    }

    private async Task<HttpResponseMessage> SendCoreAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        try
        {
            return await _http.SendAsync(request, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new CliException($"cannot reach the Flotilla server at {server} ({e.Message}); is `./flotilla serve` running? (--server URL)");
        }
    }

    public void Dispose() => _http.Dispose();
}

internal sealed class CliException(string message) : Exception(message);
