namespace NvDinoPipeline.Contracts;

public sealed record StageStarted : IStageMessage
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required PipelineStage Stage { get; init; }

    /// <summary>The worker instance that claimed the job.</summary>
    public required string WorkerId { get; init; }

    public required DateTimeOffset StartedAt { get; init; }
}

public sealed record StageProgressed : IStageMessage
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required PipelineStage Stage { get; init; }

    /// <summary>Share of the job done, 0..1, when the stage can tell.</summary>
    public double? Fraction { get; init; }

    public string? Message { get; init; }

    /// <summary>Figures such as epoch, step, loss terms, lr, images/s, bytes, files.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    public required DateTimeOffset At { get; init; }
}

public sealed record StageFailed : IStageMessage
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required PipelineStage Stage { get; init; }

    public required string Reason { get; init; }

    public required DateTimeOffset FailedAt { get; init; }
}

public sealed record StageCanceled : IStageMessage
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required PipelineStage Stage { get; init; }

    public required DateTimeOffset CanceledAt { get; init; }
}
