using Flotilla.Storage.Alerts;

namespace Flotilla.Gateway.Tests.Fakes;

/// <summary>An alert store that keeps nothing, for tests that build an alert dispatcher they never start.</summary>
internal sealed class NullAlertStore : IAlertStore
{
    public Task AddAsync(AlertRecord alert, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task SetDeliveryAsync(string id, string delivery, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<AlertRecord>> ListAsync(DateTimeOffset? since, int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<AlertRecord>>([]);
}
