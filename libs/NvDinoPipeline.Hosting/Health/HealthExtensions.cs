using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Health;
using NvDinoPipeline.Hosting.Observability;

namespace NvDinoPipeline.Hosting;

public static class HealthExtensions
{
    /// <summary>
    /// Health and readiness endpoints and the Prometheus figures on <c>/metrics</c> (section <c>Health</c>, off unless
    /// <c>Health:Port</c> is set), the
    /// time a stopping process is given to hand its jobs back (section <c>Shutdown</c>). Call it before the bus is added, so the endpoints
    /// answer while the rest starts and keep answering while it stops.
    /// </summary>
    public static IHostApplicationBuilder AddPipelineHealth(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<HealthOptions>()
            .Bind(builder.Configuration.GetSection(HealthOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddOptions<ShutdownOptions>()
            .Bind(builder.Configuration.GetSection(ShutdownOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<IConfigureOptions<HostOptions>, ConfigureShutdownTimeout>();

        var timeout = builder.Configuration.GetSection(HealthOptions.SectionName).Get<HealthOptions>()?.CheckTimeout
            ?? new HealthOptions().CheckTimeout;
        services.AddHealthChecks()
            .AddCheck<StateDatabaseHealthCheck>(StateDatabaseHealthCheck.Name, tags: [HealthTags.Ready], timeout: timeout);
        services.TryAddSingleton<PipelineMetrics>();
        services.AddHostedService<HealthEndpoint>();
        return builder;
    }

    private sealed class ConfigureShutdownTimeout(IOptions<ShutdownOptions> shutdown) : IConfigureOptions<HostOptions>
    {
        public void Configure(HostOptions options) => options.ShutdownTimeout = shutdown.Value.Timeout;
    }
}
