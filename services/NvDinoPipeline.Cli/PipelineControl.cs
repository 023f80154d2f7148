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
/// Sends start, cancel and resume to the orchestrator: through the HTTP API of a running host when there is one (see
/// <see cref="ApiClient"/>), which checks the request and answers with what is wrong; else on RabbitMQ through the broker,
/// and on the in-memory transport, which does not cross processes, as an outbox row in the state database, which the
/// embedded host's relay delivers when it runs.
/// </summary>
public sealed class PipelineControl(IConfiguration configuration, ServiceProvider services)
{
    public TransportKind Transport { get; } =
        configuration.GetValue($"{MessagingOptions.SectionName}:{nameof(MessagingOptions.Transport)}", TransportKind.InMemory);

    /// <summary>The API a request went through last; null when it went through the bus or the state database.</summary>
    public Uri? LastApi { get; private set; }

    public async Task SendAsync<T>(T message, CancellationToken cancellationToken) where T : class
    {
        using (var api = await ApiClient.FindAsync(configuration, services, cancellationToken))
        {
            if (api is not null)
            {
                try
                {
                    await (message switch
                    {
                        StartPipeline { Action: { } action, ParentJobId: { } parent } start =>
                            api.StartJobAsync(action, parent, start.Spec, start.TestDataUri, start.Name, start.PipelineId, cancellationToken),
                        StartPipeline start => api.StartAsync(start, cancellationToken),
                        CancelPipeline cancel => api.CancelAsync(cancel.PipelineId, cancel.Reason, cancellationToken),
                        ResumePipeline resume => api.ResumeAsync(resume.PipelineId, cancellationToken),
                        _ => throw new ArgumentException($"{typeof(T).Name} is not a request the API takes.", nameof(message)),
                    });
                    LastApi = api.BaseAddress;
                    return;
                }
                catch (ApiUnreachableException exception) when (configuration["Api:Url"] is null)
                {
                    // The recorded API is another machine's loopback, say: the request goes the other way.
                    Console.Error.WriteLine($"note: {exception.Message}; sending the request without it.");
                }
            }
        }
        LastApi = null;
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
