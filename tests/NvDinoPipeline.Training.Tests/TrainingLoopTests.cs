using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Training.Core.Data;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Tests;

public sealed class TrainingLoopTests
{
    [Fact]
    public async Task A_canceled_run_keeps_its_last_checkpoint_and_resuming_it_repeats_the_uninterrupted_losses()
    {
        using var folder = new TempDirectory("nvdino-loop");
        var options = TinyTraining.Trainer(epochs: 3);
        var images = TestImages.Blocks(12);
        var data = TinyTraining.Data(workers: 2);

        var uninterrupted = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = folder.Combine("a") });
            var result = await loop.RunAsync(uninterrupted, CancellationToken.None);
            Assert.Equal(9, result.StepsTaken);
            Assert.Equal(3, result.Checkpoint.Epoch);
        }
        Assert.Equal([1, 2, 3], uninterrupted.Checkpoints.Select(c => c.Epoch));

        // Canceled during epoch 2, after the checkpoint of epoch 1 and one more step.
        using var cancel = new CancellationTokenSource();
        var interrupted = new Recorder { CancelAfterSteps = 4, Cancel = cancel };
        var directory = folder.Combine("b");
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = directory });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop.RunAsync(interrupted, cancel.Token));
            Assert.Equal(4, trainer.GlobalStep);
        }
        var kept = Assert.Single(Directory.GetFiles(directory, "*.ckpt"));
        Assert.Equal("epoch_001.ckpt", Path.GetFileName(kept));
        Assert.Equal(3, TrainingCheckpointFile.ReadState(kept).GlobalStep);

        var resumed = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            trainer.LoadCheckpoint(kept);
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = directory });
            var result = await loop.RunAsync(resumed, CancellationToken.None);
            Assert.Equal(6, result.StepsTaken);
        }
        Assert.Equal([3L, 4, 5, 6, 7, 8], resumed.Steps.Select(s => s.Step));
        foreach (var step in resumed.Steps)
        {
            var expected = uninterrupted.Steps.Single(s => s.Step == step.Step);
            Assert.Equal(expected[TrainingMetrics.Loss], step[TrainingMetrics.Loss], 5);
            Assert.Equal(expected[TrainingMetrics.IbotLoss], step[TrainingMetrics.IbotLoss], 5);
        }
        Assert.Equal("epoch_003.ckpt", Path.GetFileName(Assert.Single(Directory.GetFiles(directory, "*.ckpt"))));
    }

    [Fact]
    public async Task A_stopped_run_given_time_to_save_checkpoints_the_step_it_stopped_at_and_resuming_it_repeats_the_uninterrupted_losses()
    {
        using var folder = new TempDirectory("nvdino-loop-stop");
        var options = TinyTraining.Trainer(epochs: 3);
        var images = TestImages.Blocks(12);
        var data = TinyTraining.Data(workers: 2);
        var uninterrupted = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            await new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = folder.Combine("a") }).RunAsync(uninterrupted, CancellationToken.None);
        }

        // Stopped during epoch 2, one step after the checkpoint of epoch 1, with time left to save.
        using var cancel = new CancellationTokenSource();
        using var saveWindow = new CancellationTokenSource();
        var stopped = new Recorder { CancelAfterSteps = 4, Cancel = cancel };
        var directory = folder.Combine("b");
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed), new TrainingLoopOptions { CheckpointDirectory = directory });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop.RunAsync(stopped, cancel.Token, saveWindow.Token));
        }
        Assert.Equal([1L * 3, 4], stopped.Checkpoints.Select(c => c.Step));
        var kept = Assert.Single(Directory.GetFiles(directory, "*.ckpt"));
        Assert.Equal("epoch_001_step_0000004.ckpt", Path.GetFileName(kept));

        var resumed = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            trainer.LoadCheckpoint(kept);
            var result = await new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = directory }).RunAsync(resumed, CancellationToken.None);
            Assert.Equal(5, result.StepsTaken);
        }
        Assert.Equal([4L, 5, 6, 7, 8], resumed.Steps.Select(s => s.Step));
        foreach (var step in resumed.Steps)
        {
            var expected = uninterrupted.Steps.Single(s => s.Step == step.Step);
            Assert.Equal(expected[TrainingMetrics.Loss], step[TrainingMetrics.Loss], 5);
            Assert.Equal(expected[TrainingMetrics.DinoLocalLoss], step[TrainingMetrics.DinoLocalLoss], 5);
        }

        // A run whose save window is already over (its claim was lost) writes nothing more.
        using var lostCancel = new CancellationTokenSource();
        using var closed = new CancellationTokenSource();
        await closed.CancelAsync();
        var lostDirectory = folder.Combine("c");
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed), new TrainingLoopOptions { CheckpointDirectory = lostDirectory });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                loop.RunAsync(new Recorder { CancelAfterSteps = 4, Cancel = lostCancel }, lostCancel.Token, closed.Token));
        }
        Assert.Equal(["epoch_001.ckpt"], Directory.GetFiles(lostDirectory, "*.ckpt").Select(Path.GetFileName));
    }

    [Fact]
    public async Task Timed_checkpoints_within_an_epoch_resume_step_for_step()
    {
        using var folder = new TempDirectory("nvdino-loop-timed");
        var options = TinyTraining.Trainer(epochs: 2);
        var images = TestImages.Blocks(12);
        var data = TinyTraining.Data(workers: 2);

        var uninterrupted = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = folder.Combine("a"), CheckpointEvery = TimeSpan.Zero });
            await loop.RunAsync(uninterrupted, CancellationToken.None);
        }
        // A checkpoint after every step: mid-epoch ones between, the end-of-epoch ones as before.
        Assert.Equal(
            ["epoch_000_step_0000001.ckpt", "epoch_000_step_0000002.ckpt", "epoch_001.ckpt", "epoch_001_step_0000004.ckpt", "epoch_001_step_0000005.ckpt", "epoch_002.ckpt"],
            uninterrupted.Checkpoints.Select(c => Path.GetFileName(c.CheckpointPath)));
        Assert.Equal([1L, 2, 3, 4, 5, 6], uninterrupted.Checkpoints.Select(c => c.Step));

        // Canceled after step 5: no checkpoint is written once cancel is asked, so step 4's is the newest.
        using var cancel = new CancellationTokenSource();
        var directory = folder.Combine("b");
        using (var trainer = new SslTrainer(options, 3))
        {
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = directory, CheckpointEvery = TimeSpan.Zero });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop.RunAsync(new Recorder { CancelAfterSteps = 5, Cancel = cancel }, cancel.Token));
        }
        var kept = Assert.Single(Directory.GetFiles(directory, "*.ckpt"));
        Assert.Equal("epoch_001_step_0000004.ckpt", Path.GetFileName(kept));

        var resumed = new Recorder();
        using (var trainer = new SslTrainer(options, 3))
        {
            trainer.LoadCheckpoint(kept);
            Assert.Equal(4, trainer.GlobalStep);
            var loop = new TrainingLoop(trainer, new SslBatchLoader(images, data, options.Seed),
                new TrainingLoopOptions { CheckpointDirectory = directory });
            var result = await loop.RunAsync(resumed, CancellationToken.None);
            Assert.Equal(2, result.StepsTaken);
        }
        Assert.Equal([4L, 5], resumed.Steps.Select(s => s.Step));
        foreach (var step in resumed.Steps)
        {
            var expected = uninterrupted.Steps.Single(s => s.Step == step.Step);
            Assert.Equal(expected[TrainingMetrics.Loss], step[TrainingMetrics.Loss], 5);
            Assert.Equal(expected[TrainingMetrics.KoleoLoss], step[TrainingMetrics.KoleoLoss], 5);
        }
    }

    [Fact]
    public void Checkpoint_names_order_by_how_far_into_the_run_they_are()
    {
        Assert.Equal((4, (long?)null), CheckpointNames.Parse("epoch_004.ckpt"));
        Assert.Equal((4, (long?)1500), CheckpointNames.Parse("epoch_004_step_0001500.ckpt"));
        Assert.Null(CheckpointNames.Parse("epoch_.ckpt"));
        Assert.Null(CheckpointNames.Parse("epoch_004_step_.ckpt"));
        Assert.Null(CheckpointNames.Parse("teacher_backbone.safetensors"));
        Assert.Null(CheckpointNames.EpochOf("epoch_004_step_0001500.ckpt"));

        StoredCheckpoint At(string name) => new(new Uri("file:///job/checkpoints/" + name), name, CheckpointNames.Parse(name)!.Value.Epoch,
            CheckpointNames.Parse(name)!.Value.Step);
        Assert.Equal("epoch_004_step_0001500.ckpt", StoredCheckpoints.Newest([At("epoch_003.ckpt"), At("epoch_004_step_0001500.ckpt"), At("epoch_004.ckpt")])!.FileName);
        Assert.Equal("epoch_005.ckpt", StoredCheckpoints.Newest([At("epoch_005.ckpt"), At("epoch_004_step_0001500.ckpt")])!.FileName);
        Assert.Null(StoredCheckpoints.Newest([]));

        var state = new TrainingState
        {
            Kind = "nvdinov2-ssl", GlobalStep = 1400, Epoch = 4, Epochs = 9, IterationsPerEpoch = 300, BatchSize = 2, Seed = 1, Precision = "fp32", OptimizerParameters = [],
        };
        Assert.True(At("epoch_004_step_0001500.ckpt").IsAheadOf(state));
        Assert.True(At("epoch_005.ckpt").IsAheadOf(state));
        Assert.False(At("epoch_004.ckpt").IsAheadOf(state));
        Assert.False(At("epoch_004_step_0001300.ckpt").IsAheadOf(state));
    }

    [Fact]
    public void Batches_are_the_same_whichever_threads_build_them()
    {
        var options = TinyTraining.Trainer();
        var images = TestImages.Blocks(8);
        var inline = new SslBatchLoader(images, TinyTraining.Data(workers: 0), options.Seed).Epoch(1).ToList();
        var background = new SslBatchLoader(images, TinyTraining.Data(workers: 2), options.Seed).Epoch(1).ToList();
        try
        {
            Assert.Equal(inline.Count, background.Count);
            for (var i = 0; i < inline.Count; i++)
            {
                Assert.Equal(inline[i].Step, background[i].Step);
                Assert.True(inline[i].GlobalCrops.equal(background[i].GlobalCrops).all().item<bool>());
                Assert.True(inline[i].LocalCrops!.equal(background[i].LocalCrops!).all().item<bool>());
                Assert.True(inline[i].Masks.Masks.equal(background[i].Masks.Masks).all().item<bool>());
            }
            Assert.Equal([8, 8, 3, 28, 28], [inline[0].Masks.Masks.shape[0], .. inline[0].GlobalCrops.shape]);
        }
        finally
        {
            inline.Concat(background).ToList().ForEach(b => b.Dispose());
        }
    }

    [Fact]
    public void Each_epoch_visits_every_image_once_in_a_new_order()
    {
        var loader = new SslBatchLoader(TestImages.Blocks(10), TinyTraining.Data(), seed: 5);
        var first = loader.EpochOrder(0);
        var second = loader.EpochOrder(1);
        Assert.Equal(Enumerable.Range(0, 10), first.Order());
        Assert.Equal(Enumerable.Range(0, 10), second.Order());
        Assert.NotEqual(first, second);
        Assert.Equal(2, loader.IterationsPerEpoch);
    }

    private sealed class Recorder : ITrainingObserver
    {
        public List<TrainingStepResult> Steps { get; } = [];

        public List<SavedCheckpoint> Checkpoints { get; } = [];

        public int? CancelAfterSteps { get; init; }

        public CancellationTokenSource? Cancel { get; init; }

        public void OnStep(TrainingStepResult step, double imagesPerSecond)
        {
            Steps.Add(step);
            if (Steps.Count == CancelAfterSteps)
                Cancel!.Cancel();
        }

        public Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken)
        {
            Checkpoints.Add(checkpoint);
            return Task.CompletedTask;
        }
    }
}
