using System.Text.Json;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using static NvDinoPipeline.State.PipelineStep;

namespace NvDinoPipeline.Orchestrator;

/// <summary>The pipeline's state as loaded from the database; the state machine changes it in place.</summary>
public sealed class PipelineState(PipelineRecord pipeline, List<JobRecord> jobs)
{
    public PipelineRecord Pipeline => pipeline;

    public List<JobRecord> Jobs => jobs;

    public IReadOnlyList<PipelineStep> Plan { get; } = Deserialize(pipeline.Plan);

    /// <summary>
    /// The newest attempt of a step; earlier attempts stay as history. A step a single action reuses is the job it names,
    /// whatever that job's own step was (an AutoML trial reused as <c>train</c>).
    /// </summary>
    public JobRecord? Latest(string step) =>
        Plan.FirstOrDefault(s => s.Name == step) is { Reuses: { } reused }
            ? jobs.FirstOrDefault(j => j.Id == reused)
            : jobs.Where(j => j.Step == step && j.PipelineId == pipeline.Id).OrderByDescending(j => j.Attempt).FirstOrDefault();

    public bool IsDone(string step) => Latest(step)?.Status == JobStatus.Done;
}

/// <summary>
/// What a transition asks the world to do once it is saved: jobs to send, events to publish, and messages for the
/// pipeline's results queue.
/// </summary>
public sealed record Transition(IReadOnlyList<JobRecord> Dispatch, IReadOnlyList<object> Publish)
{
    public static Transition None { get; } = new([], []);

    /// <summary>For <see cref="PipelineRecord.ResultsQueue"/>, in <see cref="PipelineRecord.ResultsContentType"/>.</summary>
    public IReadOnlyList<object> Results { get; init; } = [];

    /// <summary>
    /// Job folders whose checkpoints are deleted once the transition is saved: the trials an AutoML search with
    /// <c>automl.automl_delete_intermediate_ckpt</c> did not pick.
    /// </summary>
    public IReadOnlyList<Uri> PruneCheckpoints { get; init; } = [];
}

/// <summary>
/// The pipeline, as a story: stage the training (and test) images, train, optionally distill, export
/// to ONNX, build the deploy engine, embed the test images, score them when they carry labels. Each stage's completion starts the stages
/// that were waiting for it; a stage's failure fails the pipeline with its reason; cancel stops every
/// running stage; resume runs again only the steps that did not finish, reusing upstream artifacts.
/// </summary>
public sealed class PipelineStateMachine(IArtifactStore artifacts, TimeProvider clock, AutomlSearches searches)
{
    /// <param name="hasTestData">The pipeline has test images, and embeds them (<c>pipeline.stages.inference</c>).</param>
    /// <param name="evaluate">The test images are also scored (<c>pipeline.stages.evaluate</c>); only with test data.</param>
    public static IReadOnlyList<PipelineStep> PlanFor(bool hasTestData, bool distill, bool evaluate = false)
    {
        var plan = new List<PipelineStep> { new(StageTrain, PipelineStage.Staging, []) };
        if (hasTestData)
        {
            plan.Add(new(StageTest, PipelineStage.Staging, []));
        }
        plan.Add(new(Train, PipelineStage.Training, [StageTrain]));
        if (distill)
        {
            plan.Add(new(Distill, PipelineStage.Distillation, [Train]));
        }
        plan.Add(new(Export, PipelineStage.Export, [distill ? Distill : Train]));
        plan.Add(new(Engine, PipelineStage.EngineGeneration, [Export]));
        if (hasTestData)
        {
            plan.Add(new(Inference, PipelineStage.Inference, [Engine, StageTest]));
            if (evaluate)
            {
                plan.Add(new(Evaluate, PipelineStage.Evaluation, [Inference, StageTrain]));
            }
        }
        return plan;
    }

    /// <summary>A start request whose spec resolved: <paramref name="spec"/> is stored and every job runs with it.</summary>
    /// <param name="resultsContentType">The content type results queue messages go in: that of the start message.</param>
    public (PipelineState State, Transition Transition) Start(StartPipeline start, ResolvedSpec spec, string? resultsContentType = null)
    {
        var now = Now;
        var plan = PlanFor(start.TestDataUri is not null && spec.Get<bool>("pipeline.stages.inference"), spec.Get<bool>("pipeline.stages.distill"),
            spec.Get<bool>("pipeline.stages.evaluate"));
        var pipeline = new PipelineRecord
        {
            Id = start.PipelineId,
            Name = start.Name,
            Status = JobStatus.Running,
            Plan = Serialize(plan),
            Spec = spec.ToJson(),
            TrainDataUri = (start.TrainDataUri ?? throw new ArgumentException("A started pipeline names its training data.", nameof(start))).ToString(),
            TestDataUri = start.TestDataUri?.ToString(),
            ResultsQueue = start.ResultsQueue,
            ResultsContentType = resultsContentType,
            CreatedAt = now,
            UpdatedAt = now,
        };
        var state = new PipelineState(pipeline, []);
        var started = new PipelineStarted { PipelineId = pipeline.Id, Stages = plan.Select(s => s.Stage).Distinct().ToList(), StartedAt = clock.GetUtcNow() };
        var advance = Advance(state);
        return (state, advance with { Publish = [started, .. advance.Publish] });
    }

    /// <summary>
    /// A single action (<see cref="StartPipeline.Action"/>) that <see cref="SingleActions.Plan"/> planned: a pipeline of
    /// the steps it reuses from its parent's pipeline and the ones it runs.
    /// </summary>
    public (PipelineState State, Transition Transition) StartAction(StartPipeline start, ActionPlan plan, string? resultsContentType = null)
    {
        var now = Now;
        var pipeline = new PipelineRecord
        {
            Id = start.PipelineId,
            Name = start.Name,
            Status = JobStatus.Running,
            Plan = Serialize(plan.Steps),
            Spec = plan.Spec.ToJson(),
            TrainDataUri = plan.TrainDataUri,
            TestDataUri = plan.TestDataUri,
            ResultsQueue = start.ResultsQueue,
            ResultsContentType = resultsContentType,
            CreatedAt = now,
            UpdatedAt = now,
        };
        var state = new PipelineState(pipeline, [.. plan.Reused]);
        var started = new PipelineStarted
        {
            PipelineId = pipeline.Id,
            Stages = plan.Steps.Where(s => s.Reuses is null).Select(s => s.Stage).Distinct().ToList(),
            StartedAt = clock.GetUtcNow(),
        };
        var advance = Advance(state);
        return (state, advance with { Publish = [started, .. advance.Publish] });
    }

    /// <summary>A start request that cannot run (invalid spec, unsupported data URI): recorded as failed.</summary>
    public (PipelineState State, Transition Transition) Reject(StartPipeline start, string reason, string? resultsContentType = null)
    {
        var now = Now;
        var pipeline = new PipelineRecord
        {
            Id = start.PipelineId,
            Name = start.Name,
            Status = JobStatus.Error,
            Plan = Serialize(PlanFor(start.TestDataUri is not null, distill: false)),
            // The refused text is not kept: nothing runs with it, and it may hold what resolving would have discarded
            // (TAO's encryption_key). The reason names what was wrong.
            Spec = "",
            TrainDataUri = start.TrainDataUri?.ToString() ?? "",
            TestDataUri = start.TestDataUri?.ToString(),
            ResultsQueue = start.ResultsQueue,
            ResultsContentType = resultsContentType,
            FailedStage = PipelineStage.Staging,
            ErrorReason = reason,
            CreatedAt = now,
            UpdatedAt = now,
            CompletedAt = now,
        };
        var state = new PipelineState(pipeline, []);
        return (state, Ended(state, [],
            new PipelineFailed { PipelineId = pipeline.Id, Stage = PipelineStage.Staging, JobId = Guid.Empty, Reason = reason, FailedAt = clock.GetUtcNow() }));
    }

    /// <summary>A stage finished: record its result and start whatever was waiting for it.</summary>
    public Transition OnStageCompleted(PipelineState state, IStageCompleted completed)
    {
        var job = state.Jobs.SingleOrDefault(j => j.Id == completed.JobId);
        if (job is null)
        {
            return Transition.None;
        }
        if (AutomlSearches.IsSearch(job))
        {
            // Nothing but the orchestrator completes a search (from its trials): a completion naming it is stray.
            return Transition.None;
        }
        var expected = StageCatalog.For(job.Stage).Completion;
        if (completed.GetType() != expected)
        {
            // Recording it would hand the next stage an output it cannot read (and leave the pipeline stuck there): the
            // job fails instead, naming what arrived, and a resume runs it again. A job already ended keeps its end.
            return job.Status is JobStatus.Pending or JobStatus.Running
                ? OnStageFailed(state, new StageFailed
                {
                    PipelineId = state.Pipeline.Id, JobId = job.Id, Stage = job.Stage, FailedAt = clock.GetUtcNow(),
                    Reason = $"{job.Stage} job {job.Id} was reported complete by a {completed.GetType().Name} message, not the {expected.Name} its stage completes with",
                })
                : Transition.None;
        }
        var redelivered = job.HandledAt is not null;
        if (job.Status is JobStatus.Pending or JobStatus.Running)
        {
            job.Status = JobStatus.Done;
            job.CompletionType = completed.GetType().FullName;
            job.Completion = JsonSerializer.Serialize(completed, completed.GetType());
            job.CompletedAt = Now;
        }
        job.HandledAt ??= Now;
        job.UpdatedAt = Now;
        // Seen before (another message carrying the same completion): what it led to was saved with it the first time.
        return redelivered ? Transition.None : Advance(state);
    }

    public Transition OnStageFailed(PipelineState state, StageFailed failed)
    {
        var job = state.Jobs.SingleOrDefault(j => j.Id == failed.JobId);
        if (job is null)
        {
            return Transition.None;
        }
        if (job.Status is JobStatus.Pending or JobStatus.Running)
        {
            job.Status = JobStatus.Error;
            job.ErrorReason = failed.Reason;
            job.CompletedAt = Now;
        }
        job.HandledAt ??= Now;
        if (IsTrialStep(job.Step))
        {
            // A trial that fails scores worst; its search goes on (and fails only when no trial scores).
            return Advance(state);
        }
        return state.Pipeline.Status == JobStatus.Running ? Fail(state, failed.Stage, failed.JobId, failed.Reason) : Transition.None;
    }

    private Transition Fail(PipelineState state, PipelineStage stage, Guid jobId, string reason)
    {
        CancelActiveJobs(state, $"pipeline failed in {stage}");
        return FailRecord(state.Pipeline, stage, jobId, reason);
    }

    /// <summary>The pipeline's record failed with <paramref name="reason"/>, and its final event.</summary>
    private Transition FailRecord(PipelineRecord pipeline, PipelineStage stage, Guid jobId, string reason)
    {
        pipeline.Status = JobStatus.Error;
        pipeline.FailedStage = stage;
        pipeline.ErrorReason = reason;
        pipeline.CompletedAt = Now;
        pipeline.UpdatedAt = Now;
        return Ended(pipeline, [], new PipelineFailed { PipelineId = pipeline.Id, Stage = stage, JobId = jobId, Reason = reason, FailedAt = clock.GetUtcNow() });
    }

    /// <summary>
    /// A message the orchestrator could not apply (<see cref="PipelineChanges"/>): a running pipeline fails with
    /// <paramref name="reason"/>, in the stage of its first step not done, and its running stages are canceled; an
    /// ended one is left as it is.
    /// </summary>
    public Transition Halt(PipelineState state, string reason)
    {
        if (state.Pipeline.Status is not (JobStatus.Running or JobStatus.Pending))
        {
            return Transition.None;
        }
        var stage = state.Plan.FirstOrDefault(step => !state.IsDone(step.Name))?.Stage ?? state.Plan[^1].Stage;
        return Fail(state, stage, Guid.Empty, reason);
    }

    /// <summary><see cref="Halt"/> for a pipeline whose plan or jobs cannot be read: only its record is failed.</summary>
    public Transition HaltRecord(PipelineRecord pipeline, string reason)
    {
        return pipeline.Status is JobStatus.Running or JobStatus.Pending
            ? FailRecord(pipeline, pipeline.FailedStage ?? PipelineStage.Staging, Guid.Empty, reason)
            : Transition.None;
    }

    public Transition OnStageCanceled(PipelineState state, StageCanceled canceled)
    {
        var job = state.Jobs.SingleOrDefault(j => j.Id == canceled.JobId);
        if (job is not null && job.Status is JobStatus.Pending or JobStatus.Running)
        {
            job.Status = JobStatus.Canceled;
            job.CompletedAt = Now;
        }
        if (job is not null)
        {
            job.HandledAt ??= Now;
        }
        if (job is not null && IsTrialStep(job.Step))
        {
            // One trial canceled on its own is a trial stopped: it scores worst and its search goes on.
            return Advance(state);
        }
        return state.Pipeline.Status == JobStatus.Running
            ? Cancel(state, $"{canceled.Stage} job {canceled.JobId} was canceled")
            : Transition.None;
    }

    public Transition Cancel(PipelineState state, string? reason)
    {
        var pipeline = state.Pipeline;
        if (pipeline.Status is not (JobStatus.Running or JobStatus.Pending))
        {
            return Transition.None;
        }
        pipeline.Status = JobStatus.Canceled;
        pipeline.ErrorReason = reason ?? "canceled";
        pipeline.CompletedAt = Now;
        pipeline.UpdatedAt = Now;
        CancelActiveJobs(state, null);
        return Ended(state, [], new PipelineCanceled { PipelineId = pipeline.Id, Reason = reason, CanceledAt = clock.GetUtcNow() });
    }

    /// <summary>Runs a failed or canceled pipeline again from the steps that did not finish.</summary>
    public Transition Resume(PipelineState state)
    {
        var pipeline = state.Pipeline;
        // A start refused before any stage ran (see Reject) has no spec to run with: it is started again, not resumed.
        if (pipeline.Status is not (JobStatus.Error or JobStatus.Canceled) || state.Jobs.Count == 0)
        {
            return Transition.None;
        }
        pipeline.Status = JobStatus.Running;
        pipeline.FailedStage = null;
        pipeline.ErrorReason = null;
        pipeline.CompletedAt = null;
        pipeline.UpdatedAt = Now;
        var from = state.Plan.First(step => !state.IsDone(step.Name)).Stage;
        // The one place a step is attempted again: every step whose last attempt failed or was canceled.
        var retried = new List<JobRecord>();
        foreach (var step in state.Plan)
        {
            if (state.Latest(step.Name) is { Status: JobStatus.Error or JobStatus.Canceled } last && step.DependsOn.All(state.IsDone))
            {
                retried.AddRange(StartStep(state, step, last.Attempt + 1));
            }
        }
        var advance = Advance(state);
        var resumed = new PipelineResumed { PipelineId = pipeline.Id, FromStage = from, ResumedAt = clock.GetUtcNow() };
        return advance with { Dispatch = [.. retried, .. advance.Dispatch], Publish = [resumed, .. advance.Publish] };
    }

    /// <summary>Starts every step whose inputs are ready; completes the pipeline when all are done.</summary>
    private Transition Advance(PipelineState state)
    {
        var pipeline = state.Pipeline;
        if (pipeline.Status != JobStatus.Running)
        {
            return Transition.None;
        }
        // The ends acted on below are handled, whichever message brought the orchestrator here: a step's end is read
        // from its row, which its worker saved with the message that is maybe still on its way. That message, and the
        // recovery of ends never heard of, then change nothing.
        var own = state.Plan.Where(step => step.Reuses is null).Select(step => state.Latest(step.Name)).ToList();
        foreach (var latest in own)
        {
            if (latest is { HandledAt: null, Status: JobStatus.Done or JobStatus.Error or JobStatus.Canceled })
            {
                latest.HandledAt = Now;
            }
        }
        // A running AutoML search takes its next trials, or ends (and what waited for training may start below).
        var advanced = own
            .Where(job => job is { Status: JobStatus.Running } && AutomlSearches.IsSearch(job)).Select(job => searches.Advance(state, job!)).ToList();
        var trials = advanced.SelectMany(a => a.Dispatch).ToList();
        var prune = advanced.SelectMany(a => a.Prune).ToList();
        // A job its worker recorded as failed or canceled ends the pipeline, whichever message brought the orchestrator
        // here first: the stage's own StageFailed may still be on its way behind another stage's completion.
        if (state.Plan.Select(step => state.Latest(step.Name)).FirstOrDefault(j => j?.Status is JobStatus.Error or JobStatus.Canceled) is { } ended)
        {
            return (ended.Status == JobStatus.Error
                ? Fail(state, ended.Stage, ended.Id, ended.ErrorReason ?? $"{ended.Stage} job {ended.Id} failed")
                : Cancel(state, $"{ended.Stage} job {ended.Id} was canceled")) with { PruneCheckpoints = prune };
        }
        var dispatch = new List<JobRecord>(trials);
        foreach (var step in state.Plan)
        {
            // A step runs once per start or resume: only Resume makes a further attempt.
            if (state.Latest(step.Name) is null && step.DependsOn.All(state.IsDone))
            {
                dispatch.AddRange(StartStep(state, step, 1));
            }
        }
        pipeline.UpdatedAt = Now;
        if (!state.Plan.All(step => state.IsDone(step.Name)))
        {
            return new Transition(dispatch, []) { PruneCheckpoints = prune };
        }
        pipeline.Status = JobStatus.Done;
        pipeline.CompletedAt = Now;
        return Ended(state, dispatch, Completed(state)) with { PruneCheckpoints = prune };
    }

    /// <summary>The pipeline's final event, published, and sent to its results queue after every result when it has one.</summary>
    private static Transition Ended(PipelineState state, IReadOnlyList<JobRecord> dispatch, object final) => Ended(state.Pipeline, dispatch, final);

    private static Transition Ended(PipelineRecord pipeline, IReadOnlyList<JobRecord> dispatch, object final) =>
        new(dispatch, [final]) { Results = pipeline.ResultsQueue is null ? [] : [final] };

    private PipelineCompleted Completed(PipelineState state)
    {
        // A single action may end before any engine exists (train, distill, export).
        var engine = state.Plan.Any(s => s.Name == Engine) ? Output<EngineGenerated>(state, Engine) : null;
        var results = new Dictionary<string, Uri>();
        if (state.Plan.Any(s => s.Name == Inference))
        {
            var inference = Output<InferenceCompleted>(state, Inference);
            results["inference_csv"] = inference.CsvUri;
            results["embeddings"] = inference.EmbeddingsUri;
            results["embeddings_index"] = inference.IndexUri;
        }
        if (state.Plan.Any(s => s.Name == Evaluate))
        {
            results["evaluation"] = Output<ModelEvaluated>(state, Evaluate).EvaluationUri;
        }
        return new PipelineCompleted
        {
            PipelineId = state.Pipeline.Id,
            DeployArtifactUri = engine?.ArtifactUri,
            Results = results,
            CompletedAt = clock.GetUtcNow(),
        };
    }

    /// <summary>
    /// A new attempt of <paramref name="step"/>, added to the state; returns the jobs to send. A <c>train</c> step with
    /// <c>automl_policy: auto</c> is a search the orchestrator runs: its job is not sent, its first trials are.
    /// </summary>
    private IReadOnlyList<JobRecord> StartStep(PipelineState state, PipelineStep step, int attempt)
    {
        if (step.Name == Train && AutomlSearches.Enabled(state.Pipeline))
        {
            var search = searches.NewSearch(state, step, attempt, Output<DatasetStaged>(state, StageTrain).JobId);
            state.Jobs.Add(search);
            // Its trials cannot have ended yet (only refused ones, which leave nothing to prune).
            return searches.Advance(state, search).Dispatch;
        }
        var job = NewJob(state, step, attempt);
        state.Jobs.Add(job);
        return [job];
    }

    private JobRecord NewJob(PipelineState state, PipelineStep step, int attempt)
    {
        var pipeline = state.Pipeline;
        var jobId = Guid.NewGuid();
        var output = artifacts.JobFolder(pipeline.Id, jobId);
        var (parent, command) = BuildCommand(state, step, jobId, output);
        return new JobRecord
        {
            Id = jobId,
            PipelineId = pipeline.Id,
            ParentJobId = parent,
            Step = step.Name,
            Stage = step.Stage,
            Attempt = attempt,
            Status = JobStatus.Pending,
            Spec = pipeline.Spec,
            CommandType = command.GetType().FullName!,
            Command = JsonSerializer.Serialize(command, command.GetType()),
            CreatedAt = Now,
            UpdatedAt = Now,
        };
    }

    /// <summary>Each stage's command, built from the outputs of the stages before it.</summary>
    private (Guid? Parent, IStageCommand Command) BuildCommand(PipelineState state, PipelineStep step, Guid jobId, Uri output)
    {
        var pipeline = state.Pipeline;
        var spec = pipeline.Spec;
        // Earlier attempts' folders, newest first: a training or distillation attempt continues from their checkpoints.
        IReadOnlyList<Uri> previous = state.Jobs.Where(j => j.Step == step.Name).OrderByDescending(j => j.Attempt)
            .Select(j => artifacts.JobFolder(pipeline.Id, j.Id)).ToList();
        switch (step.Name)
        {
            case StageTrain or StageTest:
                var test = step.Name == StageTest;
                return (null, new StageDataset
                {
                    PipelineId = pipeline.Id, JobId = jobId, Spec = spec, OutputUri = output,
                    SourceUri = new Uri(test ? pipeline.TestDataUri! : pipeline.TrainDataUri),
                    Role = test ? DatasetRole.Test : DatasetRole.Train,
                });
            case Train:
                var staged = Output<DatasetStaged>(state, StageTrain);
                return (staged.JobId, new TrainModel
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = staged.JobId, Spec = spec, OutputUri = output,
                    DatasetUri = staged.DatasetUri, ManifestUri = staged.ManifestUri, PreviousAttempts = previous,
                });
            case Distill:
                var trained = Output<TrainingCompleted>(state, Train);
                var trainData = Output<DatasetStaged>(state, StageTrain);
                return (trained.JobId, new DistillModel
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = trained.JobId, Spec = spec, OutputUri = output,
                    TeacherCheckpointUri = trained.CheckpointUri, DatasetUri = trainData.DatasetUri, ManifestUri = trainData.ManifestUri,
                    PreviousAttempts = previous,
                });
            case Export:
                var validation = Output<DatasetStaged>(state, StageTrain).DatasetUri;
                if (state.Plan.Any(s => s.Name == Distill))
                {
                    var distilled = Output<DistillationCompleted>(state, Distill);
                    return (distilled.JobId, new ExportModel
                    {
                        PipelineId = pipeline.Id, JobId = jobId, ParentJobId = distilled.JobId, Spec = spec, OutputUri = output,
                        SourceStage = PipelineStage.Distillation, CheckpointsUri = FolderOf(state, Distill),
                        BackboneUri = distilled.StudentEmaBackboneUri, ValidationDatasetUri = validation,
                    });
                }
                var teacher = Output<TrainingCompleted>(state, Train);
                return (teacher.JobId, new ExportModel
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = teacher.JobId, Spec = spec, OutputUri = output,
                    SourceStage = PipelineStage.Training, CheckpointsUri = FolderOf(state, Train),
                    BackboneUri = teacher.TeacherBackboneUri, ValidationDatasetUri = validation,
                });
            case Engine:
                var exported = Output<ModelExported>(state, Export);
                return (exported.JobId, new GenerateEngine
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = exported.JobId, Spec = spec, OutputUri = output,
                    OnnxModelUri = exported.OnnxModelUri, ModelMetadataUri = exported.MetadataUri,
                    CalibrationDatasetUri = Output<DatasetStaged>(state, StageTrain).DatasetUri,
                });
            case Inference:
                var engine = Output<EngineGenerated>(state, Engine);
                var testData = Output<DatasetStaged>(state, StageTest);
                return (engine.JobId, new RunInference
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = engine.JobId, Spec = spec, OutputUri = output,
                    DeployArtifactUri = engine.ArtifactUri, Target = engine.Target, ModelMetadataUri = engine.ModelMetadataUri,
                    DatasetUri = testData.DatasetUri, ManifestUri = testData.ManifestUri,
                    ResultsQueue = pipeline.ResultsQueue, ResultsContentType = pipeline.ResultsContentType,
                });
            case Evaluate:
                // After inference, so the figures describe the model whose embeddings were delivered.
                var deployed = Output<EngineGenerated>(state, Engine);
                return (deployed.JobId, new EvaluateModel
                {
                    PipelineId = pipeline.Id, JobId = jobId, ParentJobId = deployed.JobId, Spec = spec, OutputUri = output,
                    DeployArtifactUri = deployed.ArtifactUri, Target = deployed.Target, ModelMetadataUri = deployed.ModelMetadataUri,
                    TestDatasetUri = Output<DatasetStaged>(state, StageTest).DatasetUri,
                    TrainDatasetUri = Output<DatasetStaged>(state, StageTrain).DatasetUri,
                });
            default:
                throw new InvalidOperationException($"Pipeline {pipeline.Id} has an unknown step '{step.Name}'.");
        }
    }

    /// <summary>The folder of a step's job: under its own pipeline, which for a reused step is another one.</summary>
    /// <remarks>An AutoML search has no folder of its own: its output is its best trial's, whose folder this is.</remarks>
    private Uri FolderOf(PipelineState state, string step) =>
        state.Latest(step) is not { } job ? throw new InvalidOperationException($"Step '{step}' of pipeline {state.Pipeline.Id} has no job.")
            : artifacts.JobFolder(job.PipelineId, AutomlSearches.TrainedJobId(job));

    internal static T Output<T>(PipelineState state, string step) where T : class
    {
        var job = state.Latest(step);
        if (job is not { Status: JobStatus.Done, Completion: not null })
        {
            throw new InvalidOperationException($"Step '{step}' of pipeline {state.Pipeline.Id} has no recorded output.");
        }
        return JsonSerializer.Deserialize<T>(job.Completion)
            ?? throw new InvalidOperationException($"Step '{step}' of pipeline {state.Pipeline.Id} has an empty output record.");
    }

    private void CancelActiveJobs(PipelineState state, string? reason)
    {
        foreach (var job in state.Jobs.Where(j => j.Status is JobStatus.Pending or JobStatus.Running))
        {
            job.Status = JobStatus.Canceled;
            job.ErrorReason = reason;
            job.CompletedAt = Now;
            job.UpdatedAt = Now;
        }
    }

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
}
