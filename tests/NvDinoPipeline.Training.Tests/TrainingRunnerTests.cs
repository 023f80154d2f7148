using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Jobs;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Tests;

public sealed class TrainingRunnerTests : IDisposable
{
    private readonly TempDirectory folder = new("nvdino-training");
    private readonly ArtifactStore store;

    public TrainingRunnerTests()
    {
        store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(folder.Combine("artifacts") + "/").AbsoluteUri, AllowedReadRoots = [folder.Path] }));
    }

    public void Dispose()
    {
        store.Dispose();
        folder.Dispose();
    }

    [Fact]
    public async Task Training_a_staged_dataset_writes_checkpoints_backbones_and_metrics_and_reports_progress()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(12));
        var job = NewJob(dataset, TinyTraining.Spec("train.num_epochs=2"));

        var result = await Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None);

        var completed = result.Completed;
        Assert.Equal((job.Command.PipelineId, job.Command.JobId, 2), (completed.PipelineId, completed.JobId, completed.Epochs));
        Assert.Equal(job.Output.Append("checkpoints/epoch_002.ckpt"), completed.CheckpointUri);
        Assert.NotNull(await store.GetInfoAsync(job.Output.Append("checkpoints/epoch_001.ckpt"), CancellationToken.None));
        var checkpoint = await store.GetLocalPathAsync(completed.CheckpointUri, folder.Path, CancellationToken.None);
        Assert.Equal((2, 6L), (TrainingCheckpointFile.ReadState(checkpoint).Epoch, TrainingCheckpointFile.ReadState(checkpoint).GlobalStep));
        var teacher = await store.GetLocalPathAsync(completed.TeacherBackboneUri, folder.Path, CancellationToken.None);
        Assert.Equal(TinyTraining.Backbone, BackboneWeights.ReadConfig(teacher));
        Assert.NotNull(await store.GetInfoAsync(completed.StudentBackboneUri, CancellationToken.None));

        var metricsLines = File.ReadAllLines(await store.GetLocalPathAsync(job.Output.Append("metrics.jsonl"), folder.Path, CancellationToken.None));
        Assert.Equal(2, metricsLines.Length);
        Assert.Contains("\"ibot_loss\"", metricsLines[1]);
        Assert.True(double.IsFinite(completed.Metrics[TrainingMetrics.Loss]));
        Assert.Equal(6, completed.Metrics["steps"]);

        Assert.Contains(job.Reports, r => r.Message!.StartsWith("epoch 1/2 done", StringComparison.Ordinal) && r.Metrics![TrainingMetrics.ImagesPerSecond] > 0);
        Assert.Contains(job.Reports, r => r.Metrics is { } m && m.ContainsKey(TrainingMetrics.Lr) && m.ContainsKey(TrainingMetrics.KoleoLoss) && m.ContainsKey(TrainingMetrics.Step));
        Assert.Equal(1.0, job.Reports.Last().Fraction);
    }

    [Fact]
    public async Task A_canceled_job_keeps_its_last_checkpoint_and_a_restart_elsewhere_continues_the_run()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(12));
        var job = NewJob(dataset, TinyTraining.Spec("train.num_epochs=3"));
        using var cancel = new CancellationTokenSource();
        job.OnReport = report =>
        {
            if (report.Message!.Contains("checkpoint of epoch 1 saved", StringComparison.Ordinal))
                cancel.Cancel();
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Runner().RunAsync(job.Command, job.Context("scratch-a"), cancel.Token));
        var checkpoints = await ListAsync(job.Output.Append("checkpoints/"));
        Assert.Equal(["epoch_001.ckpt"], checkpoints);

        // Another worker, with an empty scratch folder, picks the job up.
        job.OnReport = null;
        var result = await Runner().RunAsync(job.Command, job.Context("scratch-b"), CancellationToken.None);
        Assert.Contains(job.Reports, r => r.Message!.Contains("resuming this job's checkpoint", StringComparison.Ordinal) && r.Message.Contains("at epoch 1", StringComparison.Ordinal));
        Assert.Equal(3, result.Completed.Epochs);
        Assert.Equal(6, result.Completed.Metrics["steps_this_attempt"]);
        Assert.Equal(["epoch_001.ckpt", "epoch_002.ckpt", "epoch_003.ckpt"], await ListAsync(job.Output.Append("checkpoints/")));
        var metrics = File.ReadAllLines(await store.GetLocalPathAsync(job.Output.Append("metrics.jsonl"), folder.Path, CancellationToken.None));
        Assert.Equal(3, metrics.Length);
    }

    [Fact]
    public async Task A_restart_passes_over_a_checkpoint_and_a_metrics_file_torn_by_the_killed_process_and_still_finishes()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(12));
        var job = NewJob(dataset, TinyTraining.Spec("train.num_epochs=3"));
        using var cancel = new CancellationTokenSource();
        job.OnReport = report =>
        {
            if (report.Message!.Contains("checkpoint of epoch 2 saved", StringComparison.Ordinal))
                cancel.Cancel();
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Runner().RunAsync(job.Command, job.Context("scratch-a"), cancel.Token));

        // A store whose writes are not atomic, after the process died while replacing these objects: the newest
        // checkpoint holds half its bytes, and metrics.jsonl fails its recorded sha256.
        var newest = job.Output.Append("checkpoints/epoch_002.ckpt");
        var path = new Uri(newest.AbsoluteUri).LocalPath;
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..(int)(new FileInfo(path).Length / 2)]);
        using var torn = new TornStore(store, job.Output.Append("metrics.jsonl"));

        job.OnReport = null;
        var result = await new TrainingRunner(torn, Options.Create(new TrainingOptions { ProgressInterval = TimeSpan.FromMilliseconds(20), Device = "cpu" }),
            NullLogger<TrainingRunner>.Instance).RunAsync(job.Command, job.Context("scratch-b"), CancellationToken.None);

        Assert.Contains(job.Reports, r => r.Message!.Contains("epoch_001.ckpt", StringComparison.Ordinal) && r.Message.Contains("at epoch 1", StringComparison.Ordinal));
        Assert.Equal(3, result.Completed.Epochs);
        Assert.Equal(6, result.Completed.Metrics["steps_this_attempt"]);
        var metrics = File.ReadAllLines(await store.GetLocalPathAsync(job.Output.Append("metrics.jsonl"), folder.Path, CancellationToken.None));
        Assert.Equal([2, 3], metrics.Select(line => MetricsLine.EpochOf(line)!.Value));
    }

    /// <summary>The store as a non-atomic one leaves it: reading <paramref name="tornUri"/> fails its integrity check until it is written again.</summary>
    private sealed class TornStore(IArtifactStore inner, Uri tornUri) : IArtifactStore, IDisposable
    {
        private bool _torn = true;

        public Uri Root => inner.Root;

        public ArtifactAccessPolicy Access => inner.Access;

        public Uri JobFolder(Guid pipelineId, Guid jobId) => inner.JobFolder(pipelineId, jobId);

        public Task<ArtifactInfo> PutAsync(Uri destination, Stream content, CancellationToken ct) => Written(destination, inner.PutAsync(destination, content, ct));

        public Task<ArtifactInfo> PutFileAsync(Uri destination, string localPath, CancellationToken ct) => Written(destination, inner.PutFileAsync(destination, localPath, ct));

        public Task<Stream> OpenReadAsync(Uri source, CancellationToken ct)
        {
            ThrowIfTorn(source);
            return inner.OpenReadAsync(source, ct);
        }

        public Task<ArtifactInfo?> GetInfoAsync(Uri uri, CancellationToken ct) => inner.GetInfoAsync(uri, ct);

        public IAsyncEnumerable<ArtifactInfo> ListAsync(Uri prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public Task DeleteAsync(Uri uri, CancellationToken ct) => inner.DeleteAsync(uri, ct);

        public Task<string> GetLocalPathAsync(Uri uri, string scratchDirectory, CancellationToken ct)
        {
            ThrowIfTorn(uri);
            return inner.GetLocalPathAsync(uri, scratchDirectory, ct);
        }

        public void Dispose()
        {
        }

        private void ThrowIfTorn(Uri uri)
        {
            if (_torn && uri == tornUri)
                throw new ArtifactIntegrityException(uri, "recorded sha256", "aa", "bb");
        }

        private Task<ArtifactInfo> Written(Uri destination, Task<ArtifactInfo> write)
        {
            if (destination == tornUri)
                _torn = false;
            return write;
        }
    }

    [Fact]
    public async Task A_job_stopped_mid_epoch_resumes_elsewhere_from_its_timed_checkpoint_and_keeps_only_epoch_checkpoints()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(12));
        // A checkpoint after every step (the interval is far shorter than a step).
        var job = NewJob(dataset, TinyTraining.Spec("train.num_epochs=2", "train.checkpoint_interval_minutes=0.000001"));
        using var cancel = new CancellationTokenSource();
        job.OnReport = report =>
        {
            if (report.Message!.Contains("checkpoint at step 4 ", StringComparison.Ordinal))
                cancel.Cancel();
        };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Runner().RunAsync(job.Command, job.Context("scratch-a"), cancel.Token));
        // The end-of-epoch checkpoint stays; of the mid-epoch ones only the newest.
        Assert.Equal(["epoch_001.ckpt", "epoch_001_step_0000004.ckpt"], await ListAsync(job.Output.Append("checkpoints/")));

        job.OnReport = null;
        var result = await Runner().RunAsync(job.Command, job.Context("scratch-b"), CancellationToken.None);
        Assert.Contains(job.Reports, r => r.Message!.Contains("resuming this job's checkpoint", StringComparison.Ordinal)
            && r.Message.Contains("epoch_001_step_0000004.ckpt", StringComparison.Ordinal) && r.Message.Contains("(step 4 of 6)", StringComparison.Ordinal));
        Assert.Equal(2, result.Completed.Metrics["steps_this_attempt"]);
        Assert.Equal(["epoch_001.ckpt", "epoch_002.ckpt"], await ListAsync(job.Output.Append("checkpoints/")));
    }

    [Fact]
    public async Task A_stopped_attempt_saves_where_it_stopped_and_the_next_attempt_of_a_resumed_pipeline_continues_from_there()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(12));
        var first = NewJob(dataset, TinyTraining.Spec("train.num_epochs=3"));
        using var stop = new CancellationTokenSource();
        using var saveWindow = new CancellationTokenSource();
        first.OnReport = report =>
        {
            if (report.Metrics is { } metrics && metrics.TryGetValue(TrainingMetrics.Step, out var step) && step >= 4)
                stop.Cancel();
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            Runner().RunAsync(first.Command, first.Context("scratch-a", saveWindow.Token), stop.Token));
        var stoppedAt = StoredCheckpoints.Newest(await StoredCheckpoints.ListAsync(store, first.Output.Append("checkpoints/"), CancellationToken.None))!;
        var stoppedStep = stoppedAt.Step ?? stoppedAt.Epoch * 3L;
        Assert.InRange(stoppedStep, 4, 8);

        // Resume makes a new attempt, a new job in a new folder, that knows the folders of the attempts before it.
        var second = NewJob(dataset, TinyTraining.Spec("train.num_epochs=3"), previousAttempts: [first.Output]);
        var result = await Runner().RunAsync(second.Command, second.Context("scratch-b"), CancellationToken.None);

        Assert.Contains(second.Reports, r => r.Message!.Contains($"resuming the checkpoint {stoppedAt.Uri} of an earlier attempt", StringComparison.Ordinal)
            && r.Message.Contains($"(step {stoppedStep} of 9)", StringComparison.Ordinal));
        Assert.Equal(9 - stoppedStep, result.Completed.Metrics["steps_this_attempt"]);
        Assert.Equal(3, result.Completed.Epochs);
        Assert.StartsWith(second.Output.AbsoluteUri, result.Completed.CheckpointUri.AbsoluteUri, StringComparison.Ordinal);
        var metrics = File.ReadAllLines(await store.GetLocalPathAsync(second.Output.Append("metrics.jsonl"), folder.Path, CancellationToken.None));
        Assert.Equal(3, metrics.Length);
    }

    [Fact]
    public async Task A_batch_larger_than_the_dataset_fails_naming_the_batch_size()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(3));
        var job = NewJob(dataset, TinyTraining.Spec());
        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.StartsWith("dataset.batch_size: 4 is larger than the dataset", error.Message);
        Assert.Contains("holds 3 images", error.Message);
    }

    [Theory]
    [InlineData("train.pretrained_model_path=/nonexistent/dinov2_vits14.pth", "train.pretrained_model_path: '/nonexistent/dinov2_vits14.pth' cannot be read")]
    [InlineData("train.resume_training_checkpoint_path=/nonexistent/epoch_010.ckpt", "train.resume_training_checkpoint_path: '/nonexistent/epoch_010.ckpt' cannot be read")]
    public async Task A_spec_the_trainer_cannot_follow_fails_naming_the_key(string setting, string expected)
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var job = NewJob(dataset, TinyTraining.Spec(setting));
        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task Pretrained_weights_missing_backbone_parameters_fail_naming_them_and_the_key_that_allows_it()
    {
        var dataset = await StagedDataset.WriteAsync(folder.Combine("staged", "shards"), TestImages.Blocks(8));
        var pretrained = folder.Combine("no_layerscale.safetensors");
        using (var source = new NvDinoPipeline.Model.VisionTransformer(TinyTraining.Backbone with { LayerScaleInit = null }))
            BackboneWeights.Save(source, pretrained);
        var job = NewJob(dataset, TinyTraining.Spec($"train.pretrained_model_path=file://{pretrained}"));

        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));

        Assert.Contains("blocks.0.ls1.gamma", error.Message);
        Assert.Contains("train.allow_partial_pretrained_load: true", error.Message);
    }

    [Fact]
    public async Task A_dataset_that_is_not_there_fails_naming_it()
    {
        var missing = new Uri("file://" + folder.Combine("nothing-staged") + "/");
        var job = NewJob(missing, TinyTraining.Spec());
        var error = await Assert.ThrowsAsync<StageInputException>(() => Runner().RunAsync(job.Command, job.Context("scratch"), CancellationToken.None));
        Assert.Contains(missing.ToString(), error.Message);
    }

    private TrainingRunner Runner() =>
        new(store, Options.Create(new TrainingOptions { ProgressInterval = TimeSpan.FromMilliseconds(20), Device = "cpu" }), NullLogger<TrainingRunner>.Instance);

    private async Task<List<string>> ListAsync(Uri prefix)
    {
        var names = new List<string>();
        await foreach (var item in store.ListAsync(prefix, CancellationToken.None))
            names.Add(item.Uri.Segments[^1]);
        return [.. names.Order(StringComparer.Ordinal)];
    }

    private TestJob NewJob(Uri dataset, ResolvedSpec spec, IReadOnlyList<Uri>? previousAttempts = null)
    {
        var pipelineId = Guid.NewGuid();
        var jobId = Guid.NewGuid();
        var output = store.JobFolder(pipelineId, jobId);
        var command = new TrainModel
        {
            PipelineId = pipelineId,
            JobId = jobId,
            ParentJobId = Guid.NewGuid(),
            Spec = spec.ToJson(),
            OutputUri = output,
            DatasetUri = dataset,
            ManifestUri = new Uri(dataset, "../manifest.jsonl"),
            PreviousAttempts = previousAttempts ?? [],
        };
        return new TestJob(command, spec, output, folder);
    }

    private sealed class TestJob(TrainModel command, ResolvedSpec spec, Uri output, TempDirectory folder)
    {
        public TrainModel Command => command;

        public Uri Output => output;

        public ConcurrentQueue<StageProgress> Reports { get; } = new();

        public Action<StageProgress>? OnReport { get; set; }

        public StageContext Context(string scratch, CancellationToken saveOnStop = default)
        {
            var path = folder.Combine(scratch);
            Directory.CreateDirectory(path);
            return new StageContext(command, PipelineStage.Training, spec, output, path, NullLogger.Instance, (progress, _, _) =>
            {
                Reports.Enqueue(progress);
                OnReport?.Invoke(progress);
                return Task.CompletedTask;
            }, saveOnStop);
        }
    }
}
