using MassTransit;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Orchestrator;

/// <summary>Feeds every pipeline command and stage event to the state machine, then acts on the transition.</summary>
public sealed class PipelineConsumer(
    PipelineStateMachine machine,
    PipelineRepository pipelines,
    CommandDispatcher dispatcher,
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
    public async Task Consume(ConsumeContext<StartPipeline> context)
    {
        var start = context.Message;
        using var scope = LogContext.PushProperty("PipelineId", start.PipelineId);
        var problem = Check(start, out var spec);
        var transition = await pipelines.CreateAsync(
            () => problem is null
                ? machine.Start(start, spec!.Get<bool>("pipeline.stages.distill"), spec.Get<bool>("pipeline.stages.inference"))
                : machine.Reject(start, problem),
            start.PipelineId, context.CancellationToken);
        if (transition is null)
        {
            logger.LogInformation("Pipeline {PipelineId} was started before; sending its waiting jobs again", start.PipelineId);
            transition = await pipelines.UpdateAsync(start.PipelineId,
                state => new Transition(state.Jobs.Where(j => j.Status == JobStatus.Pending).ToList(), []), context.CancellationToken);
        }
        else
        {
            logger.LogInformation("Pipeline {PipelineId} started: train {TrainData}, test {TestData}{Problem}", start.PipelineId,
                start.TrainDataUri, start.TestDataUri, problem is null ? "" : $"; rejected: {problem}");
        }
        await ActAsync(context, transition);
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
            spec = ResolvedSpec.FromJson(start.Spec);
            specs.Validate(spec);
            return null;
        }
        catch (SpecValidationException exception)
        {
            return "The spec is not valid: " + string.Join("; ", exception.Errors);
        }
        catch (Exception exception) when (exception is FormatException or System.Text.Json.JsonException)
        {
            return $"The spec is not valid JSON: {exception.Message}";
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
        var transition = await pipelines.UpdateAsync(pipelineId, change, context.CancellationToken);
        if (transition is null)
        {
            logger.LogWarning("{MessageType} for unknown pipeline {PipelineId} ignored", context.SupportedMessageTypes.FirstOrDefault(), pipelineId);
            return;
        }
        await ActAsync(context, transition);
    }

    private async Task ActAsync(ConsumeContext context, Transition? transition)
    {
        if (transition is null)
        {
            return;
        }
        await dispatcher.SendAsync(transition.Dispatch, context.CancellationToken);
        foreach (var message in transition.Publish)
        {
            logger.LogInformation("Pipeline event {Event}", message.GetType().Name);
            await context.Publish(message, message.GetType(), context.CancellationToken);
        }
    }
}
