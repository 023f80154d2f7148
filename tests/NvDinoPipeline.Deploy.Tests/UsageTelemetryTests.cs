using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Deploy.Tests;

public sealed class UsageTelemetryTests : IDisposable
{
    private readonly TempDirectory _folder = new("nvdino-telemetry");

    public void Dispose() => _folder.Dispose();

    // MassTransit reports usage to its vendor over the internet by default; a deployment sends nothing unasked.
    [Fact]
    public void The_message_bus_reports_no_usage_to_its_vendor()
    {
        using var host = TestHosts.Build(TestHosts.EmbeddedSettings(_folder.Path), _ => { });

        Assert.False(host.Services.GetRequiredService<IOptions<UsageTelemetryOptions>>().Value.Enabled);
    }
}
