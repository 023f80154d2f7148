namespace NvDinoPipeline.Contracts;

public sealed record DistillModel : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The training job whose teacher is distilled.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required Uri TeacherCheckpointUri { get; init; }

    public required Uri DatasetUri { get; init; }

    public required Uri ManifestUri { get; init; }

    /// <summary>
    /// The artifact folders of this step's earlier attempts (a resumed pipeline), newest first: the job continues from
    /// the newest checkpoint among them when it has none of its own.
    /// </summary>
    public IReadOnlyList<Uri> PreviousAttempts { get; init; } = [];
}

public sealed record DistillationCompleted : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required Uri CheckpointUri { get; init; }

    public required Uri StudentBackboneUri { get; init; }

    public required Uri StudentEmaBackboneUri { get; init; }

    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();
}
