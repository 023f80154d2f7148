using NvDinoPipeline.Hosting;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Cli;

/// <summary>
/// Sends start, cancel and resume to the orchestrator: on RabbitMQ through the broker; on the in-memory transport,
/// which does not cross processes, as an outbox row in the state database, which the embedded host's relay delivers.
/// </summary>
public sealed class PipelineControl(IConfiguration configuration, ServiceProvider services)
{
    public TransportKind Transport { get; } =
        configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.Transport)}", TransportKind.InMemory);

    public async Task SendAsync<T>(T message, CancellationToken cancellationToken) where T : class
    {
        if (Transport == TransportKind.InMemory)
        {
            await services.GetRequiredService<OutboxStore>().AddAsync(
                [OutboxMessage.Send(Queues.Orchestrator, message, PipelineIdOf(message), DateTime.UtcNow)], cancellationToken);
            return;
        }
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Configuration = new ConfigurationManager() });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.ClearProviders();
        builder.Services.AddPipelineBus(configuration, []);
        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        try
        {
            var endpoint = await host.Services.GetRequiredService<IBus>().GetSendEndpoint(Queues.Address(Queues.Orchestrator));
            await endpoint.Send(message, cancellationToken);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }

    private static Guid? PipelineIdOf(object message) => message switch
    {
        StartPipeline start => start.PipelineId,
        CancelPipeline cancel => cancel.PipelineId,
        ResumePipeline resume => resume.PipelineId,
        _ => null,
    };
}
