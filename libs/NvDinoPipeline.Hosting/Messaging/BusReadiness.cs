using MassTransit;

namespace NvDinoPipeline.Hosting.Messaging;

/// <summary>Waiting until the bus and its receive endpoints are up before sending on the process's own initiative.</summary>
public static class BusReadiness
{
    /// <summary>
    /// Returns once the bus reports itself healthy, that is, started with every receive endpoint ready. Work that sends
    /// at start-up (recovery, the control inbox) waits for it: on the in-memory transport a message sent before the
    /// consuming endpoint is bound is not delivered.
    /// </summary>
    public static async Task WaitUntilReadyAsync(this IBusControl bus, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(bus);
        var delay = TimeSpan.FromMilliseconds(20);
        while (bus.CheckHealth().Status != BusHealthStatus.Healthy)
        {
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(500, delay.TotalMilliseconds * 2));
        }
    }
}
