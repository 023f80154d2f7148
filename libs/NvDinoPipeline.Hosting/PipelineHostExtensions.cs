using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Hosting.Logging;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Hosting;

public static class PipelineHostExtensions
{
    /// <summary>
    /// Wires a pipeline process: defaults, logging, state, artifact store, and one bus on the configured
    /// transport carrying whatever <paramref name="configure"/> hosts.
    /// </summary>
    public static IHostApplicationBuilder AddNvDinoPipeline(this IHostApplicationBuilder builder, Action<PipelineHostBuilder> configure)
    {
        NvDinoHome.AddDefaults(builder.Configuration);
        builder.AddPipelineLogging();
        builder.AddPipelineHealth();
        builder.AddPipelineTelemetry();
        var services = builder.Services;
        services.AddPipelineState(builder.Configuration);
        services.AddArtifactStore(builder.Configuration);
        services.AddOptions<WorkerOptions>()
            .Bind(builder.Configuration.GetSection(WorkerOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<WorkerIdentity>();
        services.AddSingleton<HostEndpoint>();
        services.AddOptions<OutboxOptions>()
            .Bind(builder.Configuration.GetSection(OutboxOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddSingleton<OutboxRelay>();
        services.AddSingleton<IOutbox>(provider => provider.GetRequiredService<OutboxRelay>());

        var pipeline = new PipelineHostBuilder(builder);
        configure(pipeline);
        services.AddSingleton(pipeline.Served);
        services.AddHostedService<StateDatabaseInitializer>();
        services.AddHostedService<JobLogWriter>();
        services.AddHostedService<WorkerHeartbeatService>();
        // Before the bus: hosted services stop in reverse order, so the relay outlives the consumers' last writes.
        services.AddHostedService(provider => provider.GetRequiredService<OutboxRelay>());
        services.AddPipelineBus(builder.Configuration, pipeline.Registrations);
        return builder;
    }

    public static IServiceCollection AddPipelineBus(this IServiceCollection services, IConfiguration configuration,
        IEnumerable<Action<IBusRegistrationConfigurator>> registrations)
    {
        services.AddOptions<MessagingOptions>()
            .Bind(configuration.GetSection(MessagingOptions.SectionName))
            .ValidateDataAnnotations()
            .ValidateOnStart();
        var options = configuration.GetSection(MessagingOptions.SectionName).Get<MessagingOptions>() ?? new MessagingOptions();
        if (options.Transport == TransportKind.RabbitMq)
        {
            services.AddSingleton<IResultsQueues, RabbitMqResultsQueues>();
        }
        else
        {
            services.AddSingleton<IResultsQueues, InMemoryResultsQueues>();
        }
        services.AddMassTransit(bus =>
        {
            bus.SetKebabCaseEndpointNameFormatter();
            // MassTransit reports usage to its vendor over the internet unless told not to; a deployment of this
            // product sends nothing anywhere it was not configured to.
            bus.ConfigureUsageTelemetryOptions(telemetry => telemetry.Enabled = false);
            bus.AddConfigureEndpointsCallback((context, _, endpoint) => endpoint.RefuseUnconsumedMessages(
                context.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(PlainJson))));
            foreach (var registration in registrations)
            {
                registration(bus);
            }
            switch (options.Transport)
            {
                case TransportKind.InMemory:
                    bus.UsingInMemory((context, cfg) =>
                    {
                        cfg.AddPlainJson();
                        cfg.ConfigureEndpoints(context);
                    });
                    break;
                case TransportKind.RabbitMq:
                    bus.UsingRabbitMq((context, cfg) =>
                    {
                        var messaging = context.GetRequiredService<IOptions<MessagingOptions>>().Value;
                        cfg.Host(new Uri(messaging.RabbitMq));
                        cfg.PrefetchCount = messaging.PrefetchCount;
                        cfg.AddPlainJson();
                        cfg.ConfigureEndpoints(context);
                    });
                    break;
                default:
                    throw new InvalidOperationException($"Messaging:Transport '{options.Transport}' is not supported; use InMemory or RabbitMq.");
            }
        });
        return services;
    }
}

/// <summary>Creates the state schema before any message is consumed.</summary>
internal sealed class StateDatabaseInitializer(StateDatabase database) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => database.EnsureCreatedAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
