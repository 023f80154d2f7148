using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Checkpoints;
using NvDinoPipeline.Checkpoints;

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
    public const string CheckpointsFolder = CheckpointNames.Folder;
    public const string MetricsFileName = CheckpointNames.MetricsFile;

    /// <summary>
    /// Where a job continues from: its own newest checkpoint (see <see cref="FindNewestAsync"/>) when it ran before, else the
    /// newest checkpoint any earlier attempt of its step left (a resumed pipeline: <paramref name="previousAttempts"/>, the
    /// attempts' folders). A checkpoint that is torn (a process killed while uploading it, on a store whose writes are not
    /// atomic) or unreadable is passed over for the next newest. Null when there is none.
    /// </summary>
    public static async Task<ResumePoint?> FindResumePointAsync(IArtifactStore store, Uri jobFolder, string checkpointDirectory, string scratch,
        IReadOnlyList<Uri> previousAttempts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(previousAttempts);
        if (await FindNewestAsync(store, jobFolder, checkpointDirectory, scratch, cancellationToken) is { } own)
            return own;
        var candidates = new List<(StoredCheckpoint Checkpoint, Uri Folder)>();
        foreach (var attempt in previousAttempts)
        {
            var folder = attempt.AsFolder();
            candidates.AddRange((await StoredCheckpoints.ListAsync(store, folder.Append(CheckpointsFolder), cancellationToken)).Select(c => (c, folder)));
        }
        foreach (var (checkpoint, folder) in candidates.OrderByDescending(c => c.Checkpoint.Epoch).ThenByDescending(c => c.Checkpoint.Step ?? 0))
        {
            if (await TryDownloadAsync(store, checkpoint, scratch, cancellationToken) is { } found)
                return new ResumePoint(found.Path, found.State, $"the checkpoint {checkpoint.Uri} of an earlier attempt", MetricsFolder: folder);
        }
        return null;
    }

    /// <summary>
    /// The newest checkpoint of the job: this worker's scratch copy in <paramref name="checkpointDirectory"/>, or the
    /// newest intact uploaded one (end of epoch or mid-epoch) when it is further, downloaded into <paramref name="scratch"/>.
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

        var uploaded = await StoredCheckpoints.ListAsync(store, jobFolder.Append(CheckpointsFolder), cancellationToken);
        foreach (var checkpoint in uploaded.Reverse().Where(c => best is null || c.IsAheadOf(best.State)))
        {
            if (await TryDownloadAsync(store, checkpoint, scratch, cancellationToken) is { } found)
            {
                if (best is null || found.State.GlobalStep > best.State.GlobalStep)
                    best = new ResumePoint(found.Path, found.State, $"this job's checkpoint {checkpoint.Uri}");
                break;
            }
        }
        return best;
    }

    /// <summary>A local copy of <paramref name="checkpoint"/> and its run state; null when the stored file is torn or no checkpoint.</summary>
    private static async Task<(string Path, TrainingState State)?> TryDownloadAsync(IArtifactStore store, StoredCheckpoint checkpoint, string scratch,
        CancellationToken cancellationToken)
    {
        string local;
        try
        {
            local = await store.GetLocalPathAsync(checkpoint.Uri, System.IO.Path.Combine(scratch, "downloads"), cancellationToken);
        }
        catch (Exception exception) when (exception is ArtifactIntegrityException or ArtifactNotFoundException)
        {
            return null;
        }
        return TryReadState(local) is { } state ? (local, state) : null;
    }

    /// <summary>
    /// Leaves at <paramref name="localPath"/> the metrics of the epochs the run continues from (the scratch copy, else the
    /// <c>metrics.jsonl</c> uploaded to <paramref name="jobFolder"/>: this job's, or the earlier attempt's it resumes),
    /// dropping lines of epochs after <paramref name="completedEpochs"/>. Returns what was lost when the uploaded file is
    /// torn (a process killed while it replaced it, on a store whose writes are not atomic): the run goes on without those
    /// lines rather than fail; null otherwise.
    /// </summary>
    public static async Task<string?> PrepareMetricsFileAsync(IArtifactStore store, Uri jobFolder, string localPath, int completedEpochs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var uploaded = jobFolder.Append(MetricsFileName);
        string? lost = null;
        if (!File.Exists(localPath) && completedEpochs > 0 && await store.GetInfoAsync(uploaded, cancellationToken) is not null)
        {
            try
            {
                await using var source = await store.OpenReadAsync(uploaded, cancellationToken);
                await using var target = File.Create(localPath);
                await source.CopyToAsync(target, cancellationToken);
            }
            catch (ArtifactIntegrityException exception)
            {
                File.Delete(localPath);
                lost = $"{exception.Message} The metrics of epochs 1 to {completedEpochs} are lost; later epochs are recorded.";
            }
        }
        if (!File.Exists(localPath))
        {
            await File.WriteAllTextAsync(localPath, "", cancellationToken);
            return lost;
        }
        var kept = (await File.ReadAllLinesAsync(localPath, cancellationToken))
            .Where(line => MetricsLine.EpochOf(line) is { } epoch && epoch <= completedEpochs);
        await File.WriteAllLinesAsync(localPath, kept, cancellationToken);
        return null;
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
