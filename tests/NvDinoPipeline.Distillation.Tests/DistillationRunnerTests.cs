using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Distillation.Tests;

public sealed class DistillationRunnerTests : IDisposable
{
    private static readonly BackboneConfig VitTiny = BackboneConfig.VitTiny(14, 28) with { DropPathRate = 0.1 };
    private static readonly BackboneConfig VitPico = BackboneConfig.VitPico(14, 28) with { DropPathRate = 0.1 };

    private readonly TempDirectory folder = new("nvdino-distillation");
    private readonly ArtifactStore store;

    public DistillationRunnerTests()
    {
        store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(folder.Combine("artifacts") + "/").AbsoluteUri, AllowedReadRoots = [folder.Path] }));
    }

    public void Dispose()
    {
        store.Dispose();
        folder.Dispose();
    }

    [Fact]
    public async Task Distilling_a_training_job_writes_student_and_ema_backbones_and_a_checkpoint()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var teacher = await TrainingJobCheckpointAsync(VitTiny);
        var job = NewJob(dataset, teacher, TinyDistillation.Spec("vit_t", "vit_pico",
            "model.distill.disable_masking=true", "model.distill.feature_matching.cls_weight=1.0", "model.distill.feature_matching.patch_weight=0.5"));

        var result = await Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None);

        var completed = result.Completed;
        Assert.Equal(job.Output.Append("checkpoints/epoch_002.ckpt"), completed.CheckpointUri);
        var checkpoint = await store.GetLocalPathAsync(completed.CheckpointUri, folder.Path, CancellationToken.None);
        Assert.Equal((DistillationTrainer.CheckpointKind, 4L), (TrainingCheckpointFile.ReadState(checkpoint).Kind, TrainingCheckpointFile.ReadState(checkpoint).GlobalStep));
        foreach (var uri in new[] { completed.StudentBackboneUri, completed.StudentEmaBackboneUri })
        {
            var path = await store.GetLocalPathAsync(uri, folder.Combine("downloads", uri.Segments[^1]), CancellationToken.None);
            Assert.Equal(VitPico, BackboneWeights.ReadConfig(path));
            using var backbone = new VisionTransformer(VitPico);
            Assert.True(BackboneWeights.Load(backbone, path, new LoadOptions { Strict = true }).IsComplete);
        }
        Assert.True(double.IsFinite(completed.Metrics[TrainingMetrics.Loss]));
        Assert.True(completed.Metrics["teacher_parameters"] > completed.Metrics["parameters"]);
        Assert.Contains(job.Reports, r => r.Message!.StartsWith("distilling vit_t into vit_pico", StringComparison.Ordinal));
        Assert.Contains(job.Reports, r => r.Message!.StartsWith("epoch 2/2 done", StringComparison.Ordinal));
        Assert.Equal(1.0, job.Reports.Last().Fraction);
    }

    [Fact]
    public async Task A_canceled_job_resumes_from_its_checkpoint_on_another_worker()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var teacher = await TrainingJobCheckpointAsync(VitTiny);
        var job = NewJob(dataset, teacher, TinyDistillation.Spec("vit_t", "vit_pico", "train.num_epochs=3"));
        using var cancel = new CancellationTokenSource();
        job.OnReport = report =>
        {
            if (report.Message!.Contains("checkpoint of epoch 1 saved", StringComparison.Ordinal))
                cancel.Cancel();
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Runner().RunAsync(job.Command, job.Context("scratch-a"), cancel.Token));

        job.OnReport = null;
        var result = await Runner().RunAsync(job.Command, job.Context("scratch-b"), CancellationToken.None);
        Assert.Contains(job.Reports, r => r.Message!.Contains("resuming this job's checkpoint", StringComparison.Ordinal) && r.Message.Contains("at epoch 1", StringComparison.Ordinal));
        Assert.Equal(4, result.Completed.Metrics["steps_this_attempt"]);
        Assert.Equal(6, result.Completed.Metrics["steps"]);
    }

    [Fact]
    public async Task A_teacher_checkpoint_of_the_wrong_shape_fails_naming_the_file()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        // The spec says the teacher is a vit_t, but the training job's backbone is a vit_pico.
        var teacher = await TrainingJobCheckpointAsync(VitPico, SslTrainer.TeacherBackboneFileName);
        var job = NewJob(dataset, teacher, TinyDistillation.Spec("vit_t", "vit_pico"));

        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.Contains("The teacher checkpoint", error.Message);
        Assert.Contains("teacher_backbone.safetensors", error.Message);
        Assert.Contains("model.backbone.teacher_type", error.Message);
        Assert.Contains("has shape", error.Message);
    }

    [Fact]
    public async Task A_missing_teacher_checkpoint_fails_naming_it()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var missing = store.JobFolder(Guid.NewGuid(), Guid.NewGuid()).Append("checkpoints/epoch_009.ckpt");
        var job = NewJob(dataset, missing, TinyDistillation.Spec("vit_t", "vit_pico"));

        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.Contains(missing.ToString(), error.Message);
    }

    [Fact]
    public async Task Distill_teacher_checkpoint_picks_latest_an_epoch_best_or_a_path_among_the_training_jobs_checkpoints()
    {
        var checkpoints = store.JobFolder(Guid.NewGuid(), Guid.NewGuid()).Append("checkpoints/");
        // Epoch 2 has the lowest mean loss; epoch 3 is the latest; a mid-epoch checkpoint is never a candidate.
        foreach (var (name, loss) in new[] { ("epoch_001.ckpt", 6.5), ("epoch_002.ckpt", 5.25), ("epoch_003.ckpt", 5.5), ("epoch_003_step_0000042.ckpt", 1.0) })
            await PutCheckpointAsync(checkpoints.Append(name), loss);
        var latest = checkpoints.Append("epoch_003.ckpt");
        var runner = Runner();

        Assert.Equal(latest, await runner.SelectTeacherAsync(latest, "latest", CancellationToken.None));
        Assert.Equal(checkpoints.Append("epoch_001.ckpt"), await runner.SelectTeacherAsync(latest, "1", CancellationToken.None));
        Assert.Equal(checkpoints.Append("epoch_002.ckpt"), await runner.SelectTeacherAsync(latest, "best", CancellationToken.None));
        Assert.Equal(checkpoints.Append("epoch_003_step_0000042.ckpt"),
            await runner.SelectTeacherAsync(latest, "epoch_003_step_0000042.ckpt", CancellationToken.None));
        Assert.Equal(new Uri("file:///data/teacher.ckpt"), await runner.SelectTeacherAsync(latest, "/data/teacher.ckpt", CancellationToken.None));

        var missing = await Assert.ThrowsAsync<StageInputException>(() => runner.SelectTeacherAsync(latest, "7", CancellationToken.None));
        Assert.Contains("distill.teacher_checkpoint = 7", missing.Message);
        Assert.Contains("epochs with a checkpoint: 1, 2, 3", missing.Message);
    }

    [Fact]
    public async Task A_teacher_epoch_that_was_not_kept_fails_the_job_naming_the_key()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var teacher = await TrainingJobCheckpointAsync(VitTiny);
        var job = NewJob(dataset, teacher, TinyDistillation.Spec("vit_t", "vit_pico", "distill.teacher_checkpoint=5"));

        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.Contains("distill.teacher_checkpoint = 5", error.Message);
        Assert.Contains("epochs with a checkpoint:", error.Message);
    }

    [Fact]
    public void A_bf16_training_spec_distills_in_fp32()
    {
        var spec = DistillationSpec.Read(TinyDistillation.Spec("vit_t", "vit_pico", "train.precision=bf16"));

        Assert.Equal(TrainingPrecision.Bf16, spec.Training.Trainer.Precision);
        Assert.Equal(TrainingPrecision.Fp32, spec.Trainer.Trainer.Precision);
        using var trainer = new DistillationTrainer(spec.Trainer with { Trainer = spec.Trainer.Trainer with { Device = "cpu" } }, iterationsPerEpoch: 1);
    }

    private async Task PutCheckpointAsync(Uri uri, double loss)
    {
        var local = folder.Combine("made", Path.GetFileName(uri.AbsolutePath));
        Directory.CreateDirectory(Path.GetDirectoryName(local)!);
        using (var tensor = TorchSharp.torch.zeros(2))
        {
            var state = new TrainingState
            {
                Kind = "nvdinov2-ssl", GlobalStep = 1, Epoch = 1, Epochs = 3, IterationsPerEpoch = 1, BatchSize = 2, Seed = 1,
                Precision = "fp32", OptimizerParameters = [], Metrics = new Dictionary<string, double> { [TrainingMetrics.Loss] = loss },
            };
            TrainingCheckpointFile.Write(local, [new("teacher.cls_token", tensor)], state, VitPico);
        }
        await store.PutFileAsync(uri, local, CancellationToken.None);
    }

    /// <summary>A training job's folder as the training worker leaves it; returns the URI of <paramref name="file"/> (the full checkpoint by default).</summary>
    private async Task<Uri> TrainingJobCheckpointAsync(BackboneConfig backbone, string? file = null)
    {
        var local = folder.Combine("training-job");
        var checkpoint = TinyDistillation.TrainedCheckpoint(local, backbone);
        var jobFolder = store.JobFolder(Guid.NewGuid(), Guid.NewGuid());
        var checkpointUri = jobFolder.Append("checkpoints/" + Path.GetFileName(checkpoint));
        await store.PutFileAsync(checkpointUri, checkpoint, CancellationToken.None);
        var teacherUri = jobFolder.Append(SslTrainer.TeacherBackboneFileName);
        await store.PutFileAsync(teacherUri, Path.Combine(local, SslTrainer.TeacherBackboneFileName), CancellationToken.None);
        return file is null ? checkpointUri : teacherUri;
    }

    private DistillationRunner Runner() =>
        new(store, Options.Create(new DistillationOptions { ProgressInterval = TimeSpan.FromMilliseconds(20), Device = "cpu" }), NullLogger<DistillationRunner>.Instance);

    private TestJob NewJob(Uri dataset, Uri teacher, ResolvedSpec spec)
    {
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        var output = store.JobFolder(pipelineId, jobId);
        var command = new DistillModel
        {
            PipelineId = pipelineId,
            JobId = jobId,
            ParentJobId = Guid.NewGuid(),
            Spec = spec.ToJson(),
            OutputUri = output,
            TeacherCheckpointUri = teacher,
            DatasetUri = dataset,
            ManifestUri = new Uri(dataset, "../manifest.jsonl"),
        };
        return new TestJob(command, spec, output, folder);
    }

    private sealed class TestJob(DistillModel command, ResolvedSpec spec, Uri output, TempDirectory folder)
    {
        public DistillModel Command => command;

        public Uri Output => output;

        public ConcurrentQueue<StageProgress> Reports { get; } = new();

        public Action<StageProgress>? OnReport { get; set; }

        public StageContext Context(string scratch)
        {
            var path = folder.Combine(scratch);
            Directory.CreateDirectory(path);
            return new StageContext(command, PipelineStage.Distillation, spec, output, path, NullLogger.Instance, (progress, _, _) =>
            {
                Reports.Enqueue(progress);
                OnReport?.Invoke(progress);
                return Task.CompletedTask;
            });
        }
    }
}
