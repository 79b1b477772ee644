using Microsoft.Extensions.Time.Testing;

namespace Flotilla.Gateway.Tests.Fakes;

internal static class FakeTimeDriving
{
    /// <summary>
    /// Advances <paramref name="time"/> by <paramref name="step"/> until <paramref name="task"/> completes, at most
    /// <paramref name="maxSteps"/> times, then returns its result. The real-time wait at the end only guards against a hang.
    /// </summary>
    public static async Task<T> RunUntilCompleteAsync<T>(this FakeTimeProvider time, Task<T> task, TimeSpan step, int maxSteps = 2_000)
    {
        for (var i = 0; i < maxSteps && !task.IsCompleted; i++)
        {
            time.Advance(step);
            await Task.Yield();
        }

        return await task.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
