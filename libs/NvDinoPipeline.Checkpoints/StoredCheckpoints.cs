using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Checkpoints;

/// <summary>A checkpoint file in a job's <c>checkpoints/</c> folder, known by its name (<see cref="CheckpointNames.FileName"/>).</summary>
/// <param name="Epoch">Epochs completed when it was written.</param>
/// <param name="Step">The step of a mid-epoch checkpoint; null for an end-of-epoch one.</param>
public sealed record StoredCheckpoint(Uri Uri, string FileName, int Epoch, long? Step)
{
    public bool IsEpochEnd => Step is null;

    /// <summary>Whether this checkpoint is further into the run than <paramref name="state"/>, without opening it.</summary>
    public bool IsAheadOf(TrainingState state) =>
        state.Epoch < Epoch || (state.Epoch == Epoch && Step is { } step && state.GlobalStep < step);
}

/// <summary>The checkpoints a training or distillation job left in the artifact store, and the choices made among them.</summary>
public static class StoredCheckpoints
{
    /// <summary>The checkpoint files directly under <paramref name="folder"/>, in run order; other files are ignored.</summary>
    public static async Task<IReadOnlyList<StoredCheckpoint>> ListAsync(IArtifactStore store, Uri folder, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(folder);
        var found = new List<StoredCheckpoint>();
        await foreach (var item in store.ListAsync(folder.AsFolder(), cancellationToken))
        {
            var name = Uri.UnescapeDataString(item.Uri.AbsolutePath[(item.Uri.AbsolutePath.LastIndexOf('/') + 1)..]);
            if (CheckpointNames.Parse(name) is { } parsed)
                found.Add(new StoredCheckpoint(item.Uri, name, parsed.Epoch, parsed.Step));
        }
        // Within one count of completed epochs the end-of-epoch checkpoint comes first, then mid-epoch ones by step.
        return [.. found.OrderBy(c => c.Epoch).ThenBy(c => c.Step ?? 0).ThenBy(c => c.Uri.AbsoluteUri, StringComparer.Ordinal)];
    }

    /// <summary>The one furthest into the run: a mid-epoch checkpoint written during epoch 5 is newer than <c>epoch_004.ckpt</c>.</summary>
    public static StoredCheckpoint? Newest(IEnumerable<StoredCheckpoint> checkpoints) =>
        checkpoints.OrderBy(c => c.Epoch).ThenBy(c => c.Step ?? 0).LastOrDefault();

    /// <summary>
    /// The end-of-epoch checkpoint with the lowest mean training loss of its last epoch (the later one on a tie), reading
    /// only each file's header; null when none records a loss.
    /// </summary>
    /// <exception cref="InvalidDataException">A checkpoint's header is unreadable; the message names it.</exception>
    public static async Task<(StoredCheckpoint Checkpoint, double Loss)?> LowestLossAsync(IArtifactStore store, IEnumerable<StoredCheckpoint> checkpoints,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(checkpoints);
        (StoredCheckpoint, double)? best = null;
        foreach (var checkpoint in checkpoints.Where(c => c.IsEpochEnd))
        {
            await using var stream = await store.OpenReadAsync(checkpoint.Uri, cancellationToken);
            var loss = await TrainingCheckpointHeader.ReadLossAsync(stream, checkpoint.Uri, cancellationToken);
            if (loss is { } value && double.IsFinite(value) && (best is null || value <= best.Value.Item2))
                best = (checkpoint, value);
        }
        return best;
    }
}
