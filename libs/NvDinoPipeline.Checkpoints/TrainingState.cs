namespace NvDinoPipeline.Checkpoints;

/// <summary>
/// The non-tensor part of a training checkpoint, stored as JSON in its safetensors metadata under
/// <see cref="MetadataKey"/>: where the run stands and how to continue it.
/// </summary>
public sealed record TrainingState
{
    public const int CurrentVersion = 1;

    /// <summary>The safetensors metadata key the state is stored under.</summary>
    public const string MetadataKey = "nvdino.training_state";

    /// <summary>The <see cref="Metrics"/> entry holding the mean training loss of the last epoch.</summary>
    public const string LossMetric = "loss";

    /// <summary>"nvdinov2-ssl" for self-supervised training; other trainers (distillation) use their own kind.</summary>
    public required string Kind { get; init; }

    public int Version { get; init; } = CurrentVersion;

    /// <summary>Steps completed: the next step to take, and the position of every schedule.</summary>
    public required long GlobalStep { get; init; }

    /// <summary>Epochs completed.</summary>
    public required int Epoch { get; init; }

    public required int Epochs { get; init; }

    public required long IterationsPerEpoch { get; init; }

    /// <summary>Images per step over all data-parallel replicas (the same for a run on one device or on several).</summary>
    public required int BatchSize { get; init; }

    /// <summary>The run's seed; with the step it determines data order, crops, masks and drop-path draws.</summary>
    public required long Seed { get; init; }

    public required string Precision { get; init; }

    /// <summary>Student parameter names in optimizer order; <c>optimizer.&lt;name&gt;.exp_avg</c> etc. hold their AdamW state.</summary>
    public required IReadOnlyList<string> OptimizerParameters { get; init; }

    public DateTimeOffset SavedAt { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>
    /// The step a run with <paramref name="iterationsPerEpoch"/> steps per epoch continues at: this state's step, or,
    /// when the checkpoint was taken with another number of steps per epoch, the start of the epoch after those it completed.
    /// </summary>
    public long ContinueAtStep(long iterationsPerEpoch) =>
        IterationsPerEpoch == iterationsPerEpoch ? GlobalStep : GlobalStep / IterationsPerEpoch * iterationsPerEpoch;

    /// <summary>Figures of the last completed epoch (mean losses, lr, images/s), when known.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}
