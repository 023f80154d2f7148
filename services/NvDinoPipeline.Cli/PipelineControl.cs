using NvDinoPipeline.Hosting;
using System.Text.Json;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Cli;

/// <summary>
/// Sends start, cancel and resume to the orchestrator: on RabbitMQ through the broker; on the
/// in-memory transport through the state database, which the embedded host reads.
/// </summary>
public sealed class PipelineControl(IConfiguration configuration, ServiceProvider services)
{
    public TransportKind Transport { get; } =
        configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.Transport)}", TransportKind.InMemory);

    public async Task SendAsync<T>(T message, CancellationToken cancellationToken) where T : class
    {
        if (Transport == TransportKind.InMemory)
        {
            await services.GetRequiredService<StateDatabase>().EnsureCreatedAsync(cancellationToken);
            var contexts = services.GetRequiredService<IDbContextFactory<StateDbContext>>();
            await using var db = await contexts.CreateDbContextAsync(cancellationToken);
            db.ControlRequests.Add(new ControlRequest
            {
                MessageType = typeof(T).FullName!,
                Message = JsonSerializer.Serialize(message),
                CreatedAt = DateTime.UtcNow,
            });
            await db.SaveChangesAsync(cancellationToken);
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
}
