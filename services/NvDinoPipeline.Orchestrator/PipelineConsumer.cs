using MassTransit;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Messaging;
using NvDinoPipeline.Hosting.Observability;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using LogContext = Serilog.Context.LogContext;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// Feeds the pipeline commands and the stages' failures and cancellations to the state machine (each stage's completion
/// comes through <see cref="StageCompletedConsumer{TCompleted}"/>), through <see cref="PipelineChanges"/>.
/// </summary>
public sealed class PipelineConsumer(
    PipelineStateMachine machine,
    PipelineStore pipelines,
    PipelineChanges changes,
    IOutbox outbox,
    IResultsQueues resultsQueues,
    SpecLoader specs,
    WorkerStore workers,
    ILogger<PipelineConsumer> logger) :
    IConsumer<StartPipeline>,
    IConsumer<CancelPipeline>,
    IConsumer<ResumePipeline>,
    IConsumer<StageFailed>,
    IConsumer<StageCanceled>
{
    /// <summary>The types of message the orchestrator's queue handles, by full name: this consumer's and every stage's completion.</summary>
    public static IReadOnlyCollection<string> ConsumedTypes { get; } =
    [
        .. typeof(PipelineConsumer).GetInterfaces()
            .Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IConsumer<>))
            .Select(i => i.GetGenericArguments()[0].FullName!),
        .. StageCatalog.All.Select(stage => stage.Completion.FullName!),
    ];

    public async Task Consume(ConsumeContext<StartPipeline> context)
    {
        var start = context.Message;
        using var scope = LogContext.PushProperty("PipelineId", start.PipelineId);
        ActionPlan? action = null;
        ResolvedSpec? spec = null;
        string? problem;
        if (start.Action is not null)
        {
            (action, problem) = await PlanActionAsync(start, context.CancellationToken);
        }
        else
        {
            try
            {
                problem = Check(ref start, out spec);
            }
            catch (Exception exception) when (PipelineChanges.IsDefect(exception))
            {
                logger.LogError(exception, "Checking the start of pipeline {PipelineId} failed; it is refused with the reason", start.PipelineId);
                problem = $"The orchestrator could not check the request: {exception.GetType().Name}: {exception.Message}";
            }
        }
        if (problem is null && (action?.Spec ?? spec) is { } gpuSpec)
        {
            var stages = action is not null ? action.Steps.Where(s => s.Reuses is null).Select(s => s.Stage) : GpuDemand.PipelineStages(gpuSpec);
            problem = await GpuDemand.ProblemAsync(workers, gpuSpec, stages, context.CancellationToken);
        }
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
        using var span = PipelineTracing.StartPipeline(start.PipelineId, start.Name);
        using var traceScope = LogContext.PushProperty("TraceId", span?.TraceId.ToString());
        var change = await pipelines.CreateAsync(start.PipelineId, PipelineChanges.Handled(context), () =>
        {
            PipelineState state;
            Transition transition;
            try
            {
                (state, transition) = problem is not null ? machine.Reject(start, problem, contentType)
                    : action is not null ? machine.StartAction(start, action, contentType)
                    : machine.Start(start, spec!, contentType);
            }
            catch (Exception exception) when (PipelineChanges.IsDefect(exception))
            {
                // It would throw again on every delivery and no pipeline would ever be recorded: it is recorded as refused.
                logger.LogError(exception, "Starting pipeline {PipelineId} failed; it is recorded as refused with the reason", start.PipelineId);
                problem = $"The orchestrator could not start the pipeline: {exception.GetType().Name}: {exception.Message}";
                (state, transition) = machine.Reject(start, problem, contentType);
            }
            state.Pipeline.TraceParent = PipelineTracing.TraceParentOf(span);
            // The jobs a single action reuses belong to other pipelines and are saved already.
            return (state.Pipeline, state.Jobs.Where(j => j.PipelineId == state.Pipeline.Id).ToList(), changes.Messages(state.Pipeline, transition));
        }, context.CancellationToken);
        if (problem is not null)
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, problem);
        switch (change.Outcome)
        {
            case ChangeOutcome.Applied when start.Action is not null:
                logger.LogInformation("Pipeline {PipelineId} started: action {Action} after job {ParentJobId}{Problem}", start.PipelineId,
                    start.Action, start.ParentJobId, problem is null ? "" : $"; rejected: {problem}");
                break;
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

    /// <summary>A single action's plan, or what makes it impossible (an unknown parent, a parent of the wrong stage, an invalid spec).</summary>
    private async Task<(ActionPlan? Plan, string? Problem)> PlanActionAsync(StartPipeline start, CancellationToken cancellationToken)
    {
        if (start.ParentJobId is not { } parentJobId)
        {
            return (null, $"The action '{start.Action}' names no parent job: give ParentJobId, the finished job it continues from.");
        }
        if (await pipelines.ReadJobAsync(parentJobId, cancellationToken) is not { } parent)
        {
            return (null, $"parent_job_id: no job {parentJobId} in the state database.");
        }
        if (start.TestDataUri is { } test && (!test.IsAbsoluteUri || test.Scheme is not ("file" or "s3")))
        {
            return (null, $"The test data URI '{test}' is not a file:// or s3:// URI.");
        }
        try
        {
            return (SingleActions.Plan(start.Action!, new PipelineState(parent.Pipeline, parent.Jobs), parent.Job, start.Spec, start.TestDataUri, specs), null);
        }
        catch (ActionRequestException exception)
        {
            return (null, exception.Field.Contains('.') || exception.Message.StartsWith("The spec", StringComparison.Ordinal)
                ? exception.Message
                : $"{exception.Field}: {exception.Message}");
        }
        catch (Exception exception) when (PipelineChanges.IsDefect(exception))
        {
            logger.LogError(exception, "Planning the action of pipeline {PipelineId} failed; it is refused with the reason", start.PipelineId);
            return (null, $"The orchestrator could not plan the action '{start.Action}': {exception.GetType().Name}: {exception.Message}");
        }
    }

    /// <summary>What makes a start request impossible to run, checked before any stage is asked to work.</summary>
    /// <remarks>A message without a data URI takes it from the spec's <c>images_dir</c> key; <paramref name="start"/> then carries it.</remarks>
    private string? Check(ref StartPipeline start, out ResolvedSpec? spec)
    {
        spec = null;
        try
        {
            spec = specs.ResolveRequest(start.Spec, "spec");
        }
        catch (SpecValidationException exception)
        {
            return "The spec is not valid: " + string.Join("; ", exception.Errors);
        }
        var resolved = spec;
        if (AutomlStart.Problem(specs, ref resolved) is { } automlProblem)
        {
            return automlProblem;
        }
        spec = resolved;
        var (train, trainProblem) = DataLocation(start.TrainDataUri, spec, "dataset.train_dataset.images_dir");
        var (test, testProblem) = DataLocation(start.TestDataUri, spec, "dataset.test_dataset.images_dir");
        start = start with { TrainDataUri = train, TestDataUri = test };
        if ((trainProblem ?? testProblem) is { } dataProblem)
        {
            return dataProblem;
        }
        if (train is null)
        {
            return "The request names no training data: give TrainDataUri or the spec key dataset.train_dataset.images_dir.";
        }
        foreach (var (name, uri) in new[] { ("train data", train), ("test data", test) })
        {
            if (uri is not null && (!uri.IsAbsoluteUri || uri.Scheme is not ("file" or "s3")))
            {
                return $"The {name} URI '{uri}' is not a file:// or s3:// URI.";
            }
        }
        return null;
    }

    /// <summary>The data a message field names, else the data its spec key names (an absolute path or URI).</summary>
    private static (Uri? Location, string? Problem) DataLocation(Uri? field, ResolvedSpec spec, string key)
    {
        if (field is not null || spec.Get<string?>(key) is not { Length: > 0 } text)
        {
            return (field, null);
        }
        Uri? fromKey = Uri.TryCreate(text, UriKind.Absolute, out var absolute) ? absolute
            : Path.IsPathRooted(text) ? new Uri(Path.GetFullPath(text)) : null;
        return fromKey is null
            ? (null, $"The spec key {key} '{text}' is neither a file:// or s3:// URI nor an absolute path.")
            : (fromKey, null);
    }

    public Task Consume(ConsumeContext<CancelPipeline> context) =>
        changes.ApplyAsync(context, context.Message.PipelineId, state => machine.Cancel(state, context.Message.Reason));

    public Task Consume(ConsumeContext<ResumePipeline> context) =>
        changes.ApplyAsync(context, context.Message.PipelineId, machine.Resume);

    public Task Consume(ConsumeContext<StageFailed> context) =>
        changes.ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageFailed(state, context.Message));

    public Task Consume(ConsumeContext<StageCanceled> context) =>
        changes.ApplyAsync(context, context.Message.PipelineId, state => machine.OnStageCanceled(state, context.Message));
}
