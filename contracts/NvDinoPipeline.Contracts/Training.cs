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
