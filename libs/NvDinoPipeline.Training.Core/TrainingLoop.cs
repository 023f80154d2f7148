using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Training.Core;

/// <summary>Figures of one completed epoch: the mean of every step metric, throughput and duration.</summary>
public sealed record EpochSummary(int Epoch, long Steps, IReadOnlyDictionary<string, double> Metrics);

/// <summary>Where a run ended: the last epoch's summary and the last checkpoint written.</summary>
public sealed record TrainingLoopResult(EpochSummary? LastEpoch, SavedCheckpoint Checkpoint, long StepsTaken);

/// <summary>What the owner of a run hears from the <see cref="TrainingLoop"/>.</summary>
public interface ITrainingObserver
{
    /// <summary>After every step, on the training thread: keep it cheap (store the figures, report elsewhere).</summary>
    void OnStep(TrainingStepResult step, double imagesPerSecond);

    Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken);

    /// <summary>A checkpoint was written locally; upload or copy it here.</summary>
    Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken);
}

public sealed record TrainingLoopOptions
{
    /// <summary>Checkpoint every this many epochs (<c>train.checkpoint_interval</c>); the last epoch always gets one.</summary>
    public int CheckpointInterval { get; init; } = 1;

    /// <summary>Local folder for checkpoints; only the newest checkpoint file is kept in it.</summary>
    public required string CheckpointDirectory { get; init; }

    /// <summary>
    /// Also checkpoint within an epoch once this much time has passed since the last checkpoint
    /// (<c>train.checkpoint_interval_minutes</c>), so that a stopped or lost worker's successor repeats at most this much
    /// work; null checkpoints at epoch ends only.
    /// </summary>
    public TimeSpan? CheckpointEvery { get; init; }
}

/// <summary>
/// Runs a <see cref="ITrainableModel"/> from its current step to the end of its last epoch over the batches of an
/// <see cref="SslBatchLoader"/>, writing a checkpoint every <see cref="TrainingLoopOptions.CheckpointInterval"/> epochs
/// (and within epochs every <see cref="TrainingLoopOptions.CheckpointEvery"/>).
/// Cancellation is checked before every step. A canceled run writes a checkpoint of where it stopped when the caller
/// gives it a <c>saveOnStop</c> token that is still live (a worker that is stopped or whose job is canceled), so that the
/// next attempt continues from that step; otherwise it leaves the last checkpoint as it was.
/// </summary>
public sealed class TrainingLoop(ITrainableModel model, SslBatchLoader loader, TrainingLoopOptions options, ILogger? logger = null)
{
    private readonly ILogger log = logger ?? NullLogger.Instance;

    public async Task<TrainingLoopResult> RunAsync(ITrainingObserver observer, CancellationToken cancellationToken,
        CancellationToken saveOnStop = default)
    {
        ArgumentNullException.ThrowIfNull(observer);
        if (options.CheckpointInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.CheckpointInterval, "CheckpointInterval must be at least 1");
        if (loader.IterationsPerEpoch != model.IterationsPerEpoch)
            throw new ArgumentException($"The loader has {loader.IterationsPerEpoch} batches per epoch but the model expects {model.IterationsPerEpoch}.", nameof(loader));

        var iterations = model.IterationsPerEpoch;
        var totalSteps = model.Epochs * iterations;
        var firstStep = model.GlobalStep;
        EpochSummary? lastEpoch = null;
        SavedCheckpoint? lastCheckpoint = null;
        var sinceCheckpoint = Stopwatch.StartNew();
        try
        {
            while (model.GlobalStep < totalSteps)
            {
                var epoch = (int)(model.GlobalStep / iterations);
                var firstBatch = model.GlobalStep % iterations;
                var sums = new Dictionary<string, double>(StringComparer.Ordinal);
                long steps = 0, images = 0;
                var epochClock = Stopwatch.StartNew();
                var stepClock = Stopwatch.StartNew();
                foreach (var batch in loader.Epoch(epoch, firstBatch, cancellationToken))
                {
                    using (batch)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var result = model.Step(batch);
                        var seconds = stepClock.Elapsed.TotalSeconds;
                        stepClock.Restart();
                        steps++;
                        images += result.Images;
                        foreach (var (name, value) in result.Metrics)
                            sums[name] = sums.GetValueOrDefault(name) + value;
                        observer.OnStep(result, seconds > 0 ? result.Images / seconds : 0);
                    }
                    // Not when canceled: cancel must be prompt, and the next step's check ends the run.
                    if (options.CheckpointEvery is { } every && sinceCheckpoint.Elapsed >= every && model.GlobalStep % iterations != 0
                        && !cancellationToken.IsCancellationRequested)
                    {
                        lastCheckpoint = await CheckpointAsync(observer, cancellationToken);
                        sinceCheckpoint.Restart();
                        stepClock.Restart();
                    }
                }

                var elapsed = epochClock.Elapsed.TotalSeconds;
                var means = sums.ToDictionary(p => p.Key, p => p.Value / Math.Max(steps, 1), StringComparer.Ordinal);
                means[TrainingMetrics.Epoch] = epoch + 1;
                means[TrainingMetrics.Step] = model.GlobalStep;
                means[TrainingMetrics.ImagesPerSecond] = elapsed > 0 ? images / elapsed : 0;
                means[TrainingMetrics.EpochSeconds] = elapsed;
                lastEpoch = new EpochSummary(epoch + 1, steps, means);
                model.EpochCompleted(lastEpoch);
                log.LogInformation("Epoch {Epoch}/{Epochs} done: loss {Loss:F4}, {ImagesPerSecond:F1} images/s, {Seconds:F1} s",
                    epoch + 1, model.Epochs, means.GetValueOrDefault(TrainingMetrics.Loss), means[TrainingMetrics.ImagesPerSecond], elapsed);
                await observer.OnEpochEndAsync(lastEpoch, cancellationToken);

                var completed = epoch + 1;
                if (completed % options.CheckpointInterval == 0 || completed == model.Epochs)
                {
                    lastCheckpoint = await CheckpointAsync(observer, cancellationToken);
                    sinceCheckpoint.Restart();
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await SaveOnStopAsync(observer, lastCheckpoint?.Step ?? firstStep, saveOnStop);
            throw;
        }

        // Resumed from the final checkpoint: nothing left to train, but the run's outputs are written again.
        lastCheckpoint ??= await CheckpointAsync(observer, cancellationToken);
        return new TrainingLoopResult(lastEpoch, lastCheckpoint, model.GlobalStep - firstStep);
    }

    /// <summary>A checkpoint of the step the run stopped at, unless the run is still where it was last saved or may not save.</summary>
    private async Task SaveOnStopAsync(ITrainingObserver observer, long savedStep, CancellationToken saveOnStop)
    {
        if (!saveOnStop.CanBeCanceled || saveOnStop.IsCancellationRequested || model.GlobalStep == savedStep)
            return;
        try
        {
            var saved = await CheckpointAsync(observer, saveOnStop);
            log.LogInformation("Stopped at step {Step} (epoch {Epoch}): its checkpoint {Path} is where the next attempt continues",
                saved.Step, saved.Epoch + 1, saved.CheckpointPath);
        }
        catch (Exception exception)
        {
            log.LogWarning(exception, "Stopped at step {Step}, but its checkpoint could not be saved; the next attempt continues from the previous one",
                model.GlobalStep);
        }
    }

    private async Task<SavedCheckpoint> CheckpointAsync(ITrainingObserver observer, CancellationToken cancellationToken)
    {
        var saved = model.SaveCheckpoint(options.CheckpointDirectory);
        log.LogInformation("Checkpoint of epoch {Epoch} (step {Step}) written to {Path}", saved.Epoch, saved.Step, saved.CheckpointPath);
        await observer.OnCheckpointAsync(saved, cancellationToken);
        foreach (var stale in Directory.EnumerateFiles(options.CheckpointDirectory, "*.ckpt"))
        {
            if (!string.Equals(Path.GetFullPath(stale), Path.GetFullPath(saved.CheckpointPath), StringComparison.Ordinal))
                File.Delete(stale);
        }
        return saved;
    }
}
