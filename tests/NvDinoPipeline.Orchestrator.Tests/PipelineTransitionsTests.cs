using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using NvDinoPipeline.Storage;
using static NvDinoPipeline.State.PipelineStep;

namespace NvDinoPipeline.Orchestrator.Tests;

/// <summary>
/// The state machine driven by hand, one message at a time, in orders the bus may deliver them: races that a running
/// host shows only now and then are played out exactly.
/// </summary>
public sealed class PipelineTransitionsTests
{
    private static readonly string Spec = SpecLoader.CreateDefault().Defaults.ToJson();
    private static readonly ArtifactStore Store = new(Options.Create(new ArtifactStoreOptions { Root = "file:///tmp/nvdino-transitions/" }));
    private readonly PipelineStateMachine _machine = new(Store, TimeProvider.System, new AutomlSearches(Store, SpecLoader.CreateDefault(), TimeProvider.System));

    [Fact]
    public void A_refused_start_keeps_none_of_its_spec_text_and_cannot_be_resumed_into_running_it()
    {
        var start = new StartPipeline
        {
            PipelineId = Guid.NewGuid(), Name = "refused", TrainDataUri = new Uri("file:///data/train/"),
            Spec = """{"encryption_key": "tlt_encode", "train": {"num_epochs": 0}}""", RequestedAt = DateTimeOffset.UtcNow,
        };

        var (state, _) = _machine.Reject(start, "The spec is not valid: train.num_epochs: 0 must be at least 1");
        var resumed = _machine.Resume(state);

        Assert.DoesNotContain("tlt_encode", state.Pipeline.Spec);
        Assert.Same(Transition.None, resumed);
        Assert.Equal(JobStatus.Error, state.Pipeline.Status);
        Assert.Empty(state.Jobs);
    }

    [Fact]
    public void A_completion_that_overtakes_a_failure_neither_attempts_the_failed_step_again_nor_swallows_the_failure()
    {
        var state = StartedUpToExport();
        // The export worker has recorded its failure; its StageFailed is still on its way when the test images' staging completes.
        var export = state.Latest(Export)!;
        export.Status = JobStatus.Error;
        export.ErrorReason = "checkpoint 'last.ckpt' is truncated at byte 1024";

        var overtaking = _machine.OnStageCompleted(state, Staged(state, StageTest));

        Assert.Empty(overtaking.Dispatch);
        Assert.Single(state.Jobs, j => j.Step == Export);
        Assert.Equal(JobStatus.Error, state.Pipeline.Status);
        Assert.Equal(PipelineStage.Export, state.Pipeline.FailedStage);
        Assert.Equal(export.ErrorReason, state.Pipeline.ErrorReason);
        var failed = Assert.IsType<PipelineFailed>(Assert.Single(overtaking.Publish));
        Assert.Equal(export.Id, failed.JobId);

        var late = _machine.OnStageFailed(state, new StageFailed
        {
            PipelineId = state.Pipeline.Id, JobId = export.Id, Stage = PipelineStage.Export, Reason = export.ErrorReason, FailedAt = DateTimeOffset.UtcNow,
        });
        Assert.Empty(late.Dispatch);
        Assert.Empty(late.Publish);

        var resumed = _machine.Resume(state);
        var retry = Assert.Single(resumed.Dispatch);
        Assert.Equal((Export, 2), (retry.Step, retry.Attempt));
        Complete(state, Export);
        Complete(state, Engine);
        Complete(state, Inference);
        var done = Complete(state, Evaluate);
        Assert.Equal(JobStatus.Done, state.Pipeline.Status);
        Assert.IsType<PipelineCompleted>(Assert.Single(done.Publish));
        Assert.Equal(1, state.Jobs.Count(j => j.Step == Engine));
    }

    [Fact]
    public void Completions_of_other_steps_never_start_another_attempt_of_a_failed_or_canceled_step()
    {
        foreach (var ended in new[] { JobStatus.Error, JobStatus.Canceled })
        {
            var state = StartedUpToExport(stageTest: false);
            var export = state.Latest(Export)!;
            export.Status = ended;
            var redelivered = _machine.OnStageCompleted(state, Staged(state, StageTrain));
            var next = _machine.OnStageCompleted(state, Staged(state, StageTest));

            Assert.Empty(redelivered.Dispatch);
            Assert.Empty(next.Dispatch);
            Assert.Single(state.Jobs, j => j.Step == Export);
            Assert.Equal(ended, state.Pipeline.Status);
        }
    }

    [Fact]
    public void Resume_makes_the_next_attempt_of_training_carry_the_folders_of_the_attempts_before_it()
    {
        var state = Started();
        Complete(state, StageTrain);
        Complete(state, StageTest);
        var first = state.Latest(Train)!;
        _machine.Cancel(state, "operator");
        _machine.Resume(state);
        var second = state.Latest(Train)!;
        _machine.Cancel(state, "operator");
        var third = Assert.Single(_machine.Resume(state).Dispatch);

        var command = System.Text.Json.JsonSerializer.Deserialize<TrainModel>(third.Command)!;
        Assert.Equal(3, third.Attempt);
        Assert.Equal([Folder(state, second), Folder(state, first)], command.PreviousAttempts);
    }

    private PipelineState Started()
    {
        var start = TestPipelineHosts.NewStart(Spec);
        var (state, _) = _machine.Start(start, SpecLoader.CreateDefault().Defaults);
        return state;
    }

    private PipelineState StartedUpToExport(bool stageTest = false)
    {
        var state = Started();
        Complete(state, StageTrain);
        if (stageTest)
        {
            Complete(state, StageTest);
        }
        Complete(state, Train);
        Assert.Equal(JobStatus.Pending, state.Latest(Export)?.Status);
        return state;
    }

    private static Uri Folder(PipelineState state, JobRecord job) => new($"file:///tmp/nvdino-transitions/{state.Pipeline.Id:D}/{job.Id:D}/");

    private Transition Complete(PipelineState state, string step)
    {
        var job = state.Latest(step)!;
        var output = Folder(state, job);
        IStageCompleted completion = job.Stage switch
        {
            PipelineStage.Staging => Staged(state, step),
            PipelineStage.Training => new TrainingCompleted
            {
                PipelineId = state.Pipeline.Id, JobId = job.Id, CheckpointUri = new(output, "checkpoints/epoch_001.ckpt"),
                TeacherBackboneUri = new(output, "teacher_backbone.safetensors"), StudentBackboneUri = new(output, "student_backbone.safetensors"), Epochs = 1,
            },
            PipelineStage.Export => new ModelExported
            {
                PipelineId = state.Pipeline.Id, JobId = job.Id, OnnxModelUri = new(output, "model.onnx"), MetadataUri = new(output, "model.json"),
                MaxAbsError = 0, MinCosine = 1,
            },
            PipelineStage.EngineGeneration => new EngineGenerated
            {
                PipelineId = state.Pipeline.Id, JobId = job.Id, ArtifactUri = new(output, "model.ort.onnx"), Target = "onnxruntime", Precision = "fp32",
                ModelMetadataUri = new(output, "model.json"), MinBatchSize = 1, OptBatchSize = 8, MaxBatchSize = 16,
            },
            PipelineStage.Inference => new InferenceCompleted
            {
                PipelineId = state.Pipeline.Id, JobId = job.Id, CsvUri = new(output, "inference.csv"), EmbeddingsUri = new(output, "embeddings.f32"),
                IndexUri = new(output, "embeddings.index.jsonl"), EmbeddedCount = 10, FailedCount = 0, Dimension = 4,
            },
            PipelineStage.Evaluation => new ModelEvaluated
            {
                PipelineId = state.Pipeline.Id, JobId = job.Id, EvaluationUri = new(output, "evaluation.json"), Evaluated = true, KnnTop1 = 0.5,
            },
            _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
        };
        return _machine.OnStageCompleted(state, completion);
    }

    private static DatasetStaged Staged(PipelineState state, string step)
    {
        var job = state.Latest(step)!;
        var output = Folder(state, job);
        return new DatasetStaged
        {
            PipelineId = state.Pipeline.Id, JobId = job.Id, Role = step == StageTest ? DatasetRole.Test : DatasetRole.Train,
            ManifestUri = new(output, "manifest.jsonl"), StatisticsUri = new(output, "statistics.json"), DatasetUri = new(output, "shards/"),
            ImageCount = 10, SkippedCount = 0, DuplicateCount = 0,
        };
    }
}
