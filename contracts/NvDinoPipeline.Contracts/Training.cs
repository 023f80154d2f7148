namespace NvDinoPipeline.Contracts;

public sealed record TrainModel : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The staging job of the training dataset.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required Uri DatasetUri { get; init; }

    public required Uri ManifestUri { get; init; }

    /// <summary>
    /// The artifact folders of this step's earlier attempts (a resumed pipeline), newest first: the job continues from
    /// the newest checkpoint among them when it has none of its own.
    /// </summary>
    public IReadOnlyList<Uri> PreviousAttempts { get; init; } = [];

    /// <summary>Set when the job is a trial of an AutoML search: the job then also scores what it trained.</summary>
    public AutomlTrial? Trial { get; init; }
}

/// <summary>
/// A training job's place in an AutoML search (<c>automl_policy: auto</c>): the job trains with the trial's values
/// (already in its spec) and reports <see cref="TrainingCompleted.Metrics"/>' <c>automl_score</c>, higher better.
/// </summary>
public sealed record AutomlTrial
{
    /// <summary>The metric, among the training job's, that ranks the trials.</summary>
    public const string ScoreMetric = "automl_score";

    /// <summary>Set beside <see cref="ScoreMetric"/> when the score is k-NN top-1 on held-out images (absent when it is the negated loss).</summary>
    public const string KnnTop1Metric = "automl_knn_top1";

    /// <summary>The search's job (its step <c>train</c>), of which this trial is a child.</summary>
    public required Guid SearchJobId { get; init; }

    /// <summary>The trial, from 1; a Hyperband trial keeps its number through the rungs it is promoted to.</summary>
    public required int Number { get; init; }

    /// <summary>The Hyperband bracket and rung (0 and 0 for a Bayesian trial).</summary>
    public int Bracket { get; init; }

    public int Rung { get; init; }

    /// <summary>The searched keys and the values this trial takes (as spec override text).</summary>
    public required IReadOnlyDictionary<string, string> Parameters { get; init; }

    /// <summary><c>automl.metric</c>: <c>auto</c>, <c>knn</c> or <c>loss</c>.</summary>
    public required string Metric { get; init; }

    /// <summary>
    /// <c>automl.held_out_fraction</c>: the share of each class's images the trial leaves out of its training and scores
    /// k-NN on (the rest is the gallery).
    /// </summary>
    public required double HeldOutFraction { get; init; }
}

public sealed record TrainingCompleted : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    /// <summary>Full training state of the last epoch (student, teacher, heads, optimiser, schedules, RNG).</summary>
    public required Uri CheckpointUri { get; init; }

    /// <summary>Backbone-only teacher weights: what export deploys.</summary>
    public required Uri TeacherBackboneUri { get; init; }

    public required Uri StudentBackboneUri { get; init; }

    public required int Epochs { get; init; }

    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}
