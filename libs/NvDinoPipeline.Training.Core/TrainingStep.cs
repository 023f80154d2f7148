using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Training.Core;

/// <summary>What one optimisation step reports: its position and named figures (losses, lr, ...).</summary>
/// <param name="Step">The global step just taken (0-based).</param>
/// <param name="Epoch">The epoch it belongs to (0-based).</param>
/// <param name="Images">Images in its batch.</param>
public sealed record TrainingStepResult(long Step, int Epoch, int Images, IReadOnlyDictionary<string, double> Metrics)
{
    public double this[string name] => Metrics[name];
}

/// <summary>A checkpoint written at the end of an epoch: the full training state and backbone-only weights.</summary>
/// <param name="Epoch">Epochs completed.</param>
/// <param name="Step">Global steps completed.</param>
/// <param name="CheckpointPath">The full state (networks, loss centers, optimizer, schedule position, seed).</param>
/// <param name="BackbonePaths">Backbone-only weights, e.g. teacher_backbone.safetensors and student_backbone.safetensors.</param>
public sealed record SavedCheckpoint(int Epoch, long Step, string CheckpointPath, IReadOnlyList<string> BackbonePaths);

/// <summary>A model the <see cref="TrainingLoop"/> can drive: one optimisation step per batch, checkpoints on request.</summary>
public interface ITrainableModel
{
    long IterationsPerEpoch { get; }

    /// <summary>Steps taken so far over the whole run (restored from a checkpoint on resume).</summary>
    long GlobalStep { get; }

    /// <summary>Total epochs of the run.</summary>
    int Epochs { get; }

    /// <summary>One optimisation step on a batch drawn for <see cref="GlobalStep"/>; advances it by one.</summary>
    TrainingStepResult Step(SslBatch batch);

    /// <summary>Called after the last step of an epoch with its summary, which the next checkpoint records.</summary>
    void EpochCompleted(EpochSummary summary);

    /// <summary>Writes the full state and the backbone weights into <paramref name="directory"/>.</summary>
    SavedCheckpoint SaveCheckpoint(string directory);
}
