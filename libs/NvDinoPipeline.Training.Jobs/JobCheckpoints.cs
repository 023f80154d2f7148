using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;

namespace NvDinoPipeline.Training.Jobs;

/// <summary>A checkpoint a job continues from: a local copy, its run state, and where it came from (for messages).</summary>
/// <param name="MetricsFolder">The job folder whose <c>metrics.jsonl</c> the run continues: this job's, or the earlier attempt's it resumes.</param>
public sealed record ResumePoint(string Path, TrainingState State, string Description, string? SpecKey = null, Uri? MetricsFolder = null);

/// <summary>
/// The files a training or distillation job keeps in its job folder — <c>checkpoints/</c> and <c>metrics.jsonl</c> —
/// and how a job that runs again (crash, worker restart, another worker) finds where it stopped.
/// </summary>
public static class JobCheckpoints
{
    public const string CheckpointsFolder = "checkpoints/";
    public const string MetricsFileName = "metrics.jsonl";

    /// <summary>
    /// Where a job continues from: its own newest checkpoint (see <see cref="FindNewestAsync"/>) when it ran before, else the
    /// newest checkpoint any earlier attempt of its step left (a resumed pipeline: <paramref name="previousAttempts"/>, the
    /// attempts' folders). Null when there is none.
    /// </summary>
    public static async Task<ResumePoint?> FindResumePointAsync(IArtifactStore store, Uri jobFolder, string checkpointDirectory, string scratch,
        IReadOnlyList<Uri> previousAttempts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(previousAttempts);
        if (await FindNewestAsync(store, jobFolder, checkpointDirectory, scratch, cancellationToken) is { } own)
            return own;
        (StoredCheckpoint Checkpoint, Uri Folder)? newest = null;
        foreach (var attempt in previousAttempts)
        {
            var folder = attempt.AbsoluteUri.EndsWith('/') ? attempt : new Uri(attempt.AbsoluteUri + "/");
            if (StoredCheckpoints.Newest(await StoredCheckpoints.ListAsync(store, folder.Append(CheckpointsFolder), cancellationToken)) is { } found
                && (newest is null || IsFurther(found, newest.Value.Checkpoint)))
                newest = (found, folder);
        }
        if (newest is not { } chosen)
            return null;
        var local = await store.GetLocalPathAsync(chosen.Checkpoint.Uri, System.IO.Path.Combine(scratch, "downloads"), cancellationToken);
        return TryReadState(local) is { } state
            ? new ResumePoint(local, state, $"the checkpoint {chosen.Checkpoint.Uri} of an earlier attempt", MetricsFolder: chosen.Folder)
            : null;
    }

    private static bool IsFurther(StoredCheckpoint candidate, StoredCheckpoint than) =>
        candidate.Epoch > than.Epoch || (candidate.Epoch == than.Epoch && (candidate.Step ?? 0) > (than.Step ?? 0));

    /// <summary>
    /// The newest checkpoint of the job: this worker's scratch copy in <paramref name="checkpointDirectory"/>, or the
    /// newest uploaded one (end of epoch or mid-epoch) when it is further, downloaded into <paramref name="scratch"/>.
    /// Null when the job has none.
    /// </summary>
    public static async Task<ResumePoint?> FindNewestAsync(IArtifactStore store, Uri jobFolder, string checkpointDirectory, string scratch,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(jobFolder);
        ResumePoint? best = null;
        foreach (var file in Directory.EnumerateFiles(checkpointDirectory, "*.ckpt"))
        {
            if (TryReadState(file) is { } state && (best is null || state.GlobalStep > best.State.GlobalStep))
                best = new ResumePoint(file, state, $"this job's checkpoint {System.IO.Path.GetFileName(file)}");
        }

        var newest = StoredCheckpoints.Newest(await StoredCheckpoints.ListAsync(store, jobFolder.Append(CheckpointsFolder), cancellationToken));
        if (newest is not null && (best is null || newest.IsAheadOf(best.State)))
        {
            var local = await store.GetLocalPathAsync(newest.Uri, System.IO.Path.Combine(scratch, "downloads"), cancellationToken);
            if (TryReadState(local) is { } state && (best is null || state.GlobalStep > best.State.GlobalStep))
                best = new ResumePoint(local, state, $"this job's checkpoint {newest.Uri}");
        }
        return best;
    }

    /// <summary>
    /// Leaves at <paramref name="localPath"/> the metrics of the epochs the run continues from (the scratch copy, else the
    /// <c>metrics.jsonl</c> uploaded to <paramref name="jobFolder"/>: this job's, or the earlier attempt's it resumes),
    /// dropping lines of epochs after <paramref name="completedEpochs"/>.
    /// </summary>
    public static async Task PrepareMetricsFileAsync(IArtifactStore store, Uri jobFolder, string localPath, int completedEpochs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var uploaded = jobFolder.Append(MetricsFileName);
        if (!File.Exists(localPath) && completedEpochs > 0 && await store.GetInfoAsync(uploaded, cancellationToken) is not null)
        {
            await using var source = await store.OpenReadAsync(uploaded, cancellationToken);
            await using var target = File.Create(localPath);
            await source.CopyToAsync(target, cancellationToken);
        }
        if (!File.Exists(localPath))
        {
            await File.WriteAllTextAsync(localPath, "", cancellationToken);
            return;
        }
        var kept = (await File.ReadAllLinesAsync(localPath, cancellationToken))
            .Where(line => MetricsLine.EpochOf(line) is { } epoch && epoch <= completedEpochs);
        await File.WriteAllLinesAsync(localPath, kept, cancellationToken);
    }

    private static TrainingState? TryReadState(string path)
    {
        try
        {
            return TrainingCheckpointFile.ReadState(path);
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException)
        {
            return null;
        }
    }
}
