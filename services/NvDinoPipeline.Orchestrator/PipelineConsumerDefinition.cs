using MassTransit;
using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.Hosting.Messaging;

namespace NvDinoPipeline.Orchestrator;

public sealed class PipelineConsumerDefinition : ConsumerDefinition<PipelineConsumer>
{
    public PipelineConsumerDefinition()
    {
        EndpointName = Queues.Orchestrator;
        ConcurrentMessageLimit = 8;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<PipelineConsumer> consumerConfigurator, IRegistrationContext context)
    {
        // Two events of one pipeline handled at once: the loser of the version check reloads and tries again.
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Handle<DbUpdateConcurrencyException>();
            retry.Handle<DbUpdateException>();
            retry.Intervals(10, 50, 100, 250, 500, 1000, 2000);
        });
    }
}
