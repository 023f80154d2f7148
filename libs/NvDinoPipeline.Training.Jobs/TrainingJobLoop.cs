using Microsoft.Extensions.Logging;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>How a training or distillation run ended: the loop's result and the last checkpoint in the job's folder.</summary>
public sealed record TrainingJobOutcome(TrainingLoopResult Loop, Uri CheckpointUri, TrainingProgress Progress);

/// <summary>
/// The part a training job and a distillation job share once their trainer is built and restored: the job's metrics
/// file continued from where the resumed epochs end, progress reports with a pump, the loop on a thread of its own with
/// checkpoints uploaded to the job's folder, and a divergence turned into an input error that keeps the last checkpoint.
/// </summary>
public sealed class TrainingJobLoop(IArtifactStore store, StageContext context, ILogger logger)
{
    /// <param name="trainer">Built, and restored from <paramref name="resume"/> when there is one.</param>
    /// <param name="images">The staged dataset the batches are drawn from.</param>
    /// <param name="spec">Its data, checkpoint interval and checkpoint period.</param>
    /// <param name="seed">The run's seed (the resumed run's when resuming).</param>
    /// <param name="checkpointDirectory">Where the loop writes checkpoints before they are uploaded.</param>
    /// <param name="resume">The checkpoint the run continues from, if any: its metrics file is continued.</param>
    /// <param name="startMessage">The first progress message.</param>
    /// <param name="progressInterval">How often the pump publishes the latest step's figures.</param>
    /// <param name="divergedAdvice">What to change when the loss diverges ("Lower train.optim.lr"); the message names the kept checkpoint after it.</param>
    public async Task<TrainingJobOutcome> RunAsync(ITrainableModel trainer, IImageSource images, TrainingSpec spec, long seed,
        string checkpointDirectory, ResumePoint? resume, string startMessage, TimeSpan progressInterval, string divergedAdvice,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(spec);
        var jobFolder = context.OutputUri.AsFolder();
        var metricsPath = Path.Combine(context.ScratchDirectory, JobCheckpoints.MetricsFileName);
        var completedEpochs = (int)(trainer.GlobalStep / trainer.IterationsPerEpoch);
        if (await JobCheckpoints.PrepareMetricsFileAsync(store, resume?.MetricsFolder ?? jobFolder, metricsPath, completedEpochs, cancellationToken) is { } lost)
            logger.LogWarning("Job {JobId}: {MetricsLost}", context.JobId, lost);
        var progress = new TrainingProgress(context, trainer.Epochs * trainer.IterationsPerEpoch, trainer.Epochs, trainer.IterationsPerEpoch);
        await progress.ReportNowAsync(startMessage, cancellationToken);

        var loader = new SslBatchLoader(images, spec.Data, seed);
        var loop = new TrainingLoop(trainer, loader, new TrainingLoopOptions
        {
            CheckpointDirectory = checkpointDirectory,
            CheckpointInterval = spec.CheckpointInterval,
            CheckpointEvery = spec.CheckpointEvery,
        }, logger);
        var observer = new CheckpointUploader(store, progress, jobFolder, metricsPath, logger);

        TrainingLoopResult result;
        using (var pumpStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var pump = progress.PumpAsync(progressInterval, pumpStop.Token);
            try
            {
                result = await Task.Factory.StartNew(() => loop.RunAsync(observer, cancellationToken, context.SaveOnStop), cancellationToken,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
            }
            catch (TrainingDivergedException exception)
            {
                throw new StageInputException(
                    $"{context.Stage} diverged: {exception.Message} {divergedAdvice}; the last checkpoint in {jobFolder.Append(JobCheckpoints.CheckpointsFolder)} is kept.", exception);
            }
            finally
            {
                await pumpStop.CancelAsync();
                await pump;
            }
        }
        var checkpointUri = observer.LastCheckpointUri ?? throw new InvalidOperationException($"The {context.Stage} job ended without a checkpoint.");
        return new TrainingJobOutcome(result, checkpointUri, progress);
    }

    /// <summary>
    /// The job's figures (the last epoch's, the run's position, then <paramref name="figures"/>), published as its last
    /// progress report and logged.
    /// </summary>
    public async Task<Dictionary<string, double>> CompleteAsync(TrainingJobOutcome outcome, ITrainableModel trainer,
        IReadOnlyDictionary<string, double> lastEpochMetrics, IEnumerable<(string Name, double Value)> figures, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcome);
        ArgumentNullException.ThrowIfNull(trainer);
        var epochs = (int)(trainer.GlobalStep / trainer.IterationsPerEpoch);
        var metrics = new Dictionary<string, double>(outcome.Loop.LastEpoch?.Metrics ?? lastEpochMetrics, StringComparer.Ordinal)
        {
            ["epochs"] = epochs,
            ["steps"] = trainer.GlobalStep,
            ["steps_this_attempt"] = outcome.Loop.StepsTaken,
        };
        foreach (var (name, value) in figures)
            metrics[name] = value;
        await outcome.Progress.ReportNowAsync($"done: {epochs} epochs, {trainer.GlobalStep} steps", cancellationToken, fraction: 1.0, metrics);
        logger.LogInformation("{Stage} job {JobId} of pipeline {PipelineId} done: {Epochs} epochs, final loss {Loss:F4}, checkpoint {CheckpointUri}",
            context.Stage, context.JobId, context.PipelineId, epochs, metrics.GetValueOrDefault(TrainingMetrics.Loss), outcome.CheckpointUri);
        return metrics;
    }
}
