using MassTransit;
using Microsoft.EntityFrameworkCore;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>The orchestrator's queue: its concurrency and retry hold for every consumer on it (the stage completions' too).</summary>
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
        // Two events of one pipeline handled at once: the loser of the version check reloads and tries again. A state
        // database that is away (restarting, locked) is waited for: every event is kept until it can be recorded.
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Handle<DbUpdateConcurrencyException>();
            retry.Handle<DbUpdateException>();
            retry.Handle<Exception>(StateFailures.IsTransient);
            retry.Intervals(10, 50, 100, 250, 500, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000, 30000, 30000, 30000, 30000);
        });
    }
}
