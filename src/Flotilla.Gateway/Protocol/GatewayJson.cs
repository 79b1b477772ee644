using System.Text.Encodings.Web;
using System.Text.Json;

namespace Flotilla.Gateway.Protocol;

/// <summary>JSON settings for what the gateway writes: compact, and text left readable (no \u0027 for an apostrophe).</summary>
internal static class GatewayJson
{
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = false };
}
