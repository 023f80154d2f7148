using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Core.Checkpoints;

public static class TrainingStates
{
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
            BatchSize = recipe.BatchSize * recipe.DataParallelReplicas,
            Seed = recipe.Seed,
            Precision = recipe.Precision.ToString().ToLowerInvariant(),
            OptimizerParameters = [],
            Metrics = lastEpochMetrics,
        };
    }
}
