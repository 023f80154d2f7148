using MassTransit;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;

namespace NvDinoPipeline.Orchestrator;

/// <summary>A stage's completion, of any stage in the catalog: recorded, and whatever was waiting for it started.</summary>
public sealed class StageCompletedConsumer<TCompleted>(PipelineStateMachine machine, PipelineChanges changes) : IConsumer<TCompleted>
    where TCompleted : class, IStageCompleted
{
    public Task Consume(ConsumeContext<TCompleted> context) =>
        changes.ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageCompleted(state, context.Message));
}

/// <summary>
/// On the orchestrator's queue beside <see cref="PipelineConsumer"/>, whose definition sets that queue's concurrency
/// and retry once for every consumer on it.
/// </summary>
public sealed class StageCompletedConsumerDefinition<TCompleted> : ConsumerDefinition<StageCompletedConsumer<TCompleted>>
    where TCompleted : class, IStageCompleted
{
    public StageCompletedConsumerDefinition() => EndpointName = Queues.Orchestrator;
}
