using MassTransit;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>How a stage's command is received: its stage, queue and default concurrency.</summary>
public sealed record StageDescriptor<TCommand>(PipelineStage Stage, string Queue, int DefaultConcurrentJobs, int RetryLimit)
    where TCommand : class;

public sealed class StageConsumerDefinition<TCommand, TCompleted> : ConsumerDefinition<StageConsumer<TCommand, TCompleted>>
    where TCommand : class, IStageCommand
    where TCompleted : class, IStageCompleted
{
    private readonly MessagingOptions _messaging;

    public StageConsumerDefinition(StageDescriptor<TCommand> descriptor, IOptions<WorkerOptions> workers, IOptions<MessagingOptions> messaging)
    {
        _messaging = messaging.Value;
        EndpointName = descriptor.Queue;
        ConcurrentMessageLimit = workers.Value.ConcurrentJobs.TryGetValue(descriptor.Stage.ToString(), out var limit)
            ? limit
            : descriptor.DefaultConcurrentJobs;
    }

    protected override void ConfigureConsumer(IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<StageConsumer<TCommand, TCompleted>> consumerConfigurator, IRegistrationContext context)
    {
        // Long jobs hold one message each: prefetching more would strand commands behind a busy worker.
        if (endpointConfigurator is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.PrefetchCount = ConcurrentMessageLimit ?? 1;
        }
        endpointConfigurator.UseMessageRetry(retry =>
        {
            retry.Handle<Exception>(StageFailures.IsTransient);
            retry.Exponential(_messaging.RetryLimit, _messaging.RetryInitialInterval, _messaging.RetryMaxInterval,
                _messaging.RetryInitialInterval);
        });
    }
}
