using MassTransit;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Feeds every pipeline command and stage event to the state machine, and saves the transition with the commands and
/// events it implies (outbox) and the message it handled (inbox) in one transaction; then delivers them. A message
/// handled before changes nothing.
/// </summary>
public sealed class PipelineConsumer(
    PipelineStateMachine machine,
    PipelineStore pipelines,
    IOutbox outbox,
    IResultsQueues resultsQueues,
    SpecLoader specs,
    ILogger<PipelineConsumer> logger) :
    IConsumer<StartPipeline>,
    IConsumer<CancelPipeline>,
    IConsumer<ResumePipeline>,
    IConsumer<DatasetStaged>,
    IConsumer<TrainingCompleted>,
    IConsumer<DistillationCompleted>,
    IConsumer<ModelExported>,
    IConsumer<EngineGenerated>,
    IConsumer<InferenceCompleted>,
    IConsumer<StageFailed>,
    IConsumer<StageCanceled>
{
    /// <summary>Who the inbox records as having handled a message: the orchestrator's queue.</summary>
    public const string InboxName = Queues.Orchestrator;

    /// <summary>The types of message this consumer handles, by full name.</summary>
    public static IReadOnlyCollection<string> ConsumedTypes { get; } = typeof(PipelineConsumer).GetInterfaces()
        .Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IConsumer<>))
        .Select(i => i.GetGenericArguments()[0].FullName!)
        .ToList();

    public async Task Consume(ConsumeContext<StartPipeline> context)
    {
        var start = context.Message;
        using var scope = LogContext.PushProperty("PipelineId", start.PipelineId);
        var problem = Check(start, out var spec);
        if (start.ResultsQueue is { } resultsQueue && ResultsQueueNames.Problem(resultsQueue) is { } queueProblem)
        {
            // Failed on the exchanges only: a name the broker may refuse is not declared.
            start = start with { ResultsQueue = null };
            problem = problem is null ? queueProblem : $"{queueProblem} {problem}";
        }
        if (start.ResultsQueue is not null)
        {
            // Declared before anything is sent to it, on every delivery of the start: a redelivered start finds it there.
            await resultsQueues.DeclareAsync(start.ResultsQueue, context.CancellationToken);
        }
        var contentType = PlainJson.ContentTypeOf(context);
        var change = await pipelines.CreateAsync(start.PipelineId, Handled(context), () =>
        {
            var (state, transition) = problem is null
                ? machine.Start(start, spec!, contentType)
                : machine.Reject(start, problem, contentType);
            return (state.Pipeline, state.Jobs, Messages(state.Pipeline, transition));
        }, context.CancellationToken);
        switch (change.Outcome)
        {
            case ChangeOutcome.Applied:
                logger.LogInformation("Pipeline {PipelineId} started: train {TrainData}, test {TestData}{Problem}", start.PipelineId,
                    start.TrainDataUri, start.TestDataUri, problem is null ? "" : $"; rejected: {problem}");
                break;
            case ChangeOutcome.Missing:
                logger.LogInformation("Pipeline {PipelineId} was started before; the request changes nothing", start.PipelineId);
                break;
        }
        await outbox.DeliverAsync(change.Outbox, context.CancellationToken);
    }

    /// <summary>What makes a start request impossible to run, checked before any stage is asked to work.</summary>
    private string? Check(StartPipeline start, out ResolvedSpec? spec)
    {
        spec = null;
        foreach (var (name, uri) in new[] { ("train data", start.TrainDataUri), ("test data", start.TestDataUri) })
        {
            if (uri is not null && (!uri.IsAbsoluteUri || uri.Scheme is not ("file" or "s3")))
            {
                return $"The {name} URI '{uri}' is not a file:// or s3:// URI.";
            }
        }
        try
        {
            spec = specs.ResolveRequest(start.Spec, "spec");
            return null;
        }
        catch (SpecValidationException exception)
        {
            return "The spec is not valid: " + string.Join("; ", exception.Errors);
        }
    }

    public Task Consume(ConsumeContext<CancelPipeline> context) =>
        ApplyAsync(context, context.Message.PipelineId, state => machine.Cancel(state, context.Message.Reason));

    public Task Consume(ConsumeContext<ResumePipeline> context) =>
        ApplyAsync(context, context.Message.PipelineId, machine.Resume);

    public Task Consume(ConsumeContext<DatasetStaged> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<TrainingCompleted> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<DistillationCompleted> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<ModelExported> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<EngineGenerated> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<InferenceCompleted> context) => CompletedAsync(context);

    public Task Consume(ConsumeContext<StageFailed> context) =>
        ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageFailed(state, context.Message));

    public Task Consume(ConsumeContext<StageCanceled> context) =>
        ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageCanceled(state, context.Message));

    private Task CompletedAsync<T>(ConsumeContext<T> context) where T : class, IStageMessage =>
        ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageCompleted(state, context.Message));

    private async Task ApplyAsync(ConsumeContext context, Guid pipelineId, Func<PipelineState, Transition> change)
    {
        using var scope = LogContext.PushProperty("PipelineId", pipelineId);
        var saved = await pipelines.UpdateAsync(pipelineId, Handled(context),
            (pipeline, jobs) => Messages(pipeline, change(new PipelineState(pipeline, jobs))), context.CancellationToken);
        switch (saved.Outcome)
        {
            case ChangeOutcome.Missing:
                logger.LogWarning("{MessageType} for unknown pipeline {PipelineId} ignored", context.SupportedMessageTypes.FirstOrDefault(), pipelineId);
                return;
            case ChangeOutcome.AlreadyHandled:
                logger.LogInformation("{MessageType} {MessageId} of pipeline {PipelineId} was handled before; it changes nothing",
                    context.SupportedMessageTypes.FirstOrDefault(), context.MessageId, pipelineId);
                return;
        }
        await outbox.DeliverAsync(saved.Outbox, context.CancellationToken);
    }

    /// <summary>
    /// The transition's commands (each job's stored command, to its stage's queue), events, and messages for the
    /// pipeline's results queue, as outbox rows.
    /// </summary>
    private IReadOnlyList<OutboxMessage> Messages(PipelineRecord pipeline, Transition transition)
    {
        var pipelineId = pipeline.Id;
        foreach (var message in transition.Publish)
        {
            logger.LogInformation("Pipeline event {Event}", message.GetType().Name);
        }
        foreach (var job in transition.Dispatch)
        {
            logger.LogInformation("Sending {Command} for {Stage} job {JobId} (step {Step}, attempt {Attempt})",
                job.CommandType[(job.CommandType.LastIndexOf('.') + 1)..], job.Stage, job.Id, job.Step, job.Attempt);
        }
        return
        [
            .. transition.Publish.Select(message => outbox.Publish(message, pipelineId)),
            .. transition.Dispatch.Select(job => outbox.Send(Queues.ForStage(job.Stage), job.CommandType, job.Command, pipelineId)),
            .. transition.Results.Select(message => outbox.Send(pipeline.ResultsQueue!, message, pipelineId, pipeline.ResultsContentType)),
        ];
    }

    private static HandledMessage? Handled(ConsumeContext context) =>
        context.MessageId is { } id ? new HandledMessage(id, InboxName) : null;
}
