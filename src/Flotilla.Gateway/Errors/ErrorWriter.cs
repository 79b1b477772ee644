using Flotilla.Gateway.Protocol;
using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Flotilla.Gateway.Errors;

/// <summary>Writes errors in the OpenAI wire format, as a response or as a final SSE event.</summary>
public static class ErrorWriter
{
    public static byte[] ToJson(GatewayException error) => ToJson(error.Message, error.Type, error.Code, error.Param);

    public static byte[] ToJson(string message, string type, string code, string? param = null)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, GatewayJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("message", message);
            writer.WriteString("type", type);
            if (param is null)
            {
                writer.WriteNull("param");
            }
            else
            {
                writer.WriteString("param", param);
            }

            writer.WriteString("code", code);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static async Task WriteAsync(HttpContext context, GatewayException error)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            return;
        }

        response.StatusCode = error.Status;
        response.ContentType = "application/json";
        if (error.RetryAfterSeconds is { } seconds)
        {
            response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (error.Status == 401)
        {
            response.Headers.WWWAuthenticate = "Bearer";
        }

        await response.Body.WriteAsync(ToJson(error), context.RequestAborted);
    }

    /// <summary>The SSE event that ends a stream that failed after it started.</summary>
    public static byte[] ToSseEvent(string message, string type, string code)
    {
        var json = ToJson(message, type, code);
        var result = new byte[json.Length + 8];
        "data: "u8.CopyTo(result);
        json.CopyTo(result, 6);
        result[^2] = (byte)'\n';
        result[^1] = (byte)'\n';
        return result;
    }
}
