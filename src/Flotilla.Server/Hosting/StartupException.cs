namespace Flotilla.Server.Hosting;

/// <summary>
/// The server cannot start: the message is one line that says what is wrong and what to do, printed as is
/// (no stack trace) by <c>flotilla serve</c>, which then exits with code 1.
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
