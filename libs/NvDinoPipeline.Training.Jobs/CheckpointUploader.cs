using System.Diagnostics;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>
/// What a training or distillation job does as its <see cref="TrainingLoop"/> runs: progress per step, a line of
/// <c>metrics.jsonl</c> per epoch, and every checkpoint uploaded to <c>checkpoints/</c> in the job folder with the
/// backbones and metrics beside it. End-of-epoch checkpoints are kept (export and distillation choose among them);
/// of the mid-epoch ones only the newest, since each only matters until the next checkpoint.
/// </summary>
public sealed class CheckpointUploader(IArtifactStore store, TrainingProgress progress, Uri jobFolder, string metricsPath, ILogger logger) : ITrainingObserver
{
    public Uri? LastCheckpointUri { get; private set; }

    public void OnStep(TrainingStepResult step, double imagesPerSecond) => progress.Update(step, imagesPerSecond);

    public async Task OnEpochEndAsync(EpochSummary summary, CancellationToken cancellationToken)
    {
        // Not cancelable: the epoch is done, and a stop arriving now still saves a checkpoint past it, which the next
        // attempt continues from; without its line that attempt's metrics.jsonl would lack this epoch.
        await File.AppendAllTextAsync(metricsPath, MetricsLine.Format(summary) + "\n", CancellationToken.None);
        await progress.EpochEndAsync(summary, cancellationToken);
    }

    public async Task OnCheckpointAsync(SavedCheckpoint checkpoint, CancellationToken cancellationToken)
    {
        var folder = jobFolder.Append(JobCheckpoints.CheckpointsFolder);
        var checkpointUri = folder.Append(Path.GetFileName(checkpoint.CheckpointPath));
        var clock = Stopwatch.StartNew();
        // The checkpoint goes last: a job that restarts continues from the newest checkpoint it finds, so the metrics and
        // backbones of that point must already be there when it appears (lines of later epochs are dropped on restart).
        await store.PutFileAsync(jobFolder.Append(JobCheckpoints.MetricsFileName), metricsPath, cancellationToken);
        foreach (var backbone in checkpoint.BackbonePaths)
            await store.PutFileAsync(jobFolder.Append(Path.GetFileName(backbone)), backbone, cancellationToken);
        var info = await store.PutFileAsync(checkpointUri, checkpoint.CheckpointPath, cancellationToken);
        LastCheckpointUri = checkpointUri;

        foreach (var superseded in (await StoredCheckpoints.ListAsync(store, folder, cancellationToken)).Where(c => !c.IsEpochEnd && c.Uri != checkpointUri))
            await store.DeleteAsync(superseded.Uri, cancellationToken);

        var what = CheckpointNames.Parse(Path.GetFileName(checkpoint.CheckpointPath)) is { Step: not null }
            ? $"checkpoint at step {checkpoint.Step} (in epoch {checkpoint.Epoch + 1})"
            : $"checkpoint of epoch {checkpoint.Epoch}";
        logger.LogInformation("{Checkpoint} uploaded to {CheckpointUri} ({Bytes} bytes, {Seconds:F1} s)", what, checkpointUri, info.Size, clock.Elapsed.TotalSeconds);
        await progress.ReportNowAsync($"{what} saved to {checkpointUri}", cancellationToken);
    }
}
