namespace NvDinoPipeline.Training.Core.Checkpoints;

/// <summary>
/// The non-tensor part of a training checkpoint, stored as JSON in its safetensors metadata under
/// <see cref="TrainingCheckpointFile.StateMetadataKey"/>: where the run stands and how to continue it.
/// </summary>
public sealed record TrainingState
{
    public const int CurrentVersion = 1;

    /// <summary>"nvdinov2-ssl" for self-supervised training; other trainers (distillation) use their own kind.</summary>
    public required string Kind { get; init; }

    public int Version { get; init; } = CurrentVersion;

    /// <summary>Steps completed: the next step to take, and the position of every schedule.</summary>
    public required long GlobalStep { get; init; }

    /// <summary>Epochs completed.</summary>
    public required int Epoch { get; init; }

    public required int Epochs { get; init; }

    public required long IterationsPerEpoch { get; init; }

    public required int BatchSize { get; init; }

    /// <summary>The run's seed; with the step it determines data order, crops, masks and drop-path draws.</summary>
    public required long Seed { get; init; }

    public required string Precision { get; init; }

    /// <summary>Student parameter names in optimizer order; <c>optimizer.&lt;name&gt;.exp_avg</c> etc. hold their AdamW state.</summary>
    public required IReadOnlyList<string> OptimizerParameters { get; init; }

    public DateTimeOffset SavedAt { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>The state of a run of <paramref name="recipe"/> after <paramref name="globalStep"/> steps, as a trainer checkpoints it.</summary>
    public static TrainingState Of(string kind, SslTrainerOptions recipe, long globalStep, long iterationsPerEpoch,
        IReadOnlyDictionary<string, double> lastEpochMetrics)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        return new TrainingState
        {
            Kind = kind,
            GlobalStep = globalStep,
            Epoch = (int)(globalStep / iterationsPerEpoch),
            Epochs = recipe.Epochs,
            IterationsPerEpoch = iterationsPerEpoch,
            BatchSize = recipe.BatchSize,
            Seed = recipe.Seed,
            Precision = recipe.Precision.ToString().ToLowerInvariant(),
            OptimizerParameters = [],
            Metrics = lastEpochMetrics,
        };
    }

    /// <summary>
    /// The step a run with <paramref name="iterationsPerEpoch"/> steps per epoch continues at: this state's step, or,
    /// when the checkpoint was taken with another number of steps per epoch, the start of the epoch after those it completed.
    /// </summary>
    public long ContinueAtStep(long iterationsPerEpoch) =>
        IterationsPerEpoch == iterationsPerEpoch ? GlobalStep : GlobalStep / IterationsPerEpoch * iterationsPerEpoch;

    /// <summary>Figures of the last completed epoch (mean losses, lr, images/s), when known.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}
