namespace NvDinoPipeline.Contracts;

/// <summary>
/// Scores the deployed model's embeddings of the labelled test images (weighted k-NN and a linear probe), next to
/// raw pixels and the same network at random initialisation.
/// </summary>
public sealed record EvaluateModel : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The engine generation job whose artifact is scored.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required Uri DeployArtifactUri { get; init; }

    public required string Target { get; init; }

    public required Uri ModelMetadataUri { get; init; }

    /// <summary>The staged test images: the images scored.</summary>
    public required Uri TestDatasetUri { get; init; }

    /// <summary>The staged training images: the k-NN gallery and the probe's training set when they carry labels.</summary>
    public required Uri TrainDatasetUri { get; init; }
}

public sealed record ModelEvaluated : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    /// <summary><c>evaluation.json</c>: every figure, and what it was measured on.</summary>
    public required Uri EvaluationUri { get; init; }

    /// <summary>False when the test images carry no labels: nothing could be scored (<see cref="Reason"/> says why).</summary>
    public required bool Evaluated { get; init; }

    public string? Reason { get; init; }

    /// <summary>The deployed model's weighted k-NN top-1 accuracy; null when nothing was scored.</summary>
    public double? KnnTop1 { get; init; }

    /// <summary>The deployed model's linear-probe top-1 accuracy; null when nothing was scored or no probe ran.</summary>
    public double? LinearProbeTop1 { get; init; }
}
