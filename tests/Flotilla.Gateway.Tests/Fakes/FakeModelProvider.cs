using System.Text;
using Flotilla.Fleet;
using Flotilla.Gateway.Protocol;
using Flotilla.Gateway.Providers;

namespace Flotilla.Gateway.Tests.Fakes;

/// <summary>
/// An in-memory provider that plays a script, one step per call; the last step repeats for every later call.
/// Steps answer, fail with a status, fail to connect (<see cref="HttpRequestException"/>) or hang until cancelled.
/// </summary>
internal sealed class FakeModelProvider(string name) : IModelProvider
{
    private readonly List<Func<UpstreamCall, CancellationToken, Task<UpstreamReply>>> _steps = [];
    private readonly List<UpstreamCall> _calls = [];
    private readonly Lock _lock = new();
    private int _cancelled;

    public ProviderConfig Config { get; } = new(name, ProviderType.OpenAI, null, null, new Dictionary<string, ConfigValue>(), SimulationConfig.Default, default);

    /// <summary>How many times <see cref="SendAsync"/> was called.</summary>
    public int Calls
    {
        get
        {
            lock (_lock)
            {
                return _calls.Count;
            }
        }
    }

    /// <summary>How many hanging calls saw their cancellation token fire.</summary>
    public int Cancelled => Volatile.Read(ref _cancelled);

    /// <summary>The body of every answer: <c>{"answered_by":"NAME","model":"UPSTREAM MODEL"}</c>.</summary>
    public static string AnswerBody(string provider, string upstreamModel) => $$"""{"answered_by":"{{provider}}","model":"{{upstreamModel}}"}""";

    public FakeModelProvider Answers(TokenUsage? usage = null) => Then((call, _) =>
        Task.FromResult(UpstreamReply.Answer(Encoding.UTF8.GetBytes(AnswerBody(Config.Name, call.Model.UpstreamModel)), usage ?? new TokenUsage(10, 20))));

    public FakeModelProvider FailsWith(int status, TimeSpan? retryAfter = null) => Then((_, _) =>
        Task.FromResult(UpstreamReply.Failed(AttemptOutcome.Status, status, $"provider '{Config.Name}' answered {status}", retryAfter: retryAfter)));

    public FakeModelProvider CannotConnect() => Then((_, _) =>
        Task.FromException<UpstreamReply>(new HttpRequestException(HttpRequestError.ConnectionError, "connection refused (fake)")));

    public FakeModelProvider Hangs() => Then(async (_, cancellationToken) =>
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _cancelled);
            throw;
        }

        throw new InvalidOperationException("unreachable: an infinite delay ended without cancellation");
    });

    public Task<UpstreamReply> SendAsync(UpstreamCall call, CancellationToken cancellationToken)
    {
        Func<UpstreamCall, CancellationToken, Task<UpstreamReply>> step;
        lock (_lock)
        {
            if (_steps.Count == 0)
            {
                throw new InvalidOperationException($"fake provider '{Config.Name}' has no script");
            }

            step = _steps[Math.Min(_calls.Count, _steps.Count - 1)];
            _calls.Add(call);
        }

        return step(call, cancellationToken);
    }

    private FakeModelProvider Then(Func<UpstreamCall, CancellationToken, Task<UpstreamReply>> step)
    {
        lock (_lock)
        {
            _steps.Add(step);
        }

        return this;
    }
}
