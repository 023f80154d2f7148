namespace NvDinoPipeline.Contracts;

public sealed record ExportModel : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The training or distillation job whose checkpoint is exported.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required PipelineStage SourceStage { get; init; }

    /// <summary>The source job's artifact folder, where its checkpoints are listed.</summary>
    public required Uri CheckpointsUri { get; init; }

    /// <summary>Backbone weights chosen by the source stage (its latest).</summary>
    public required Uri BackboneUri { get; init; }

    /// <summary>Images for the parity check; null uses generated images.</summary>
    public Uri? ValidationDatasetUri { get; init; }
}

public sealed record ModelExported : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required Uri OnnxModelUri { get; init; }

    /// <summary>Opset, input/output names and shapes, pre-processing, parity figures, source checkpoint.</summary>
    public required Uri MetadataUri { get; init; }

    public required double MaxAbsError { get; init; }

    public required double MinCosine { get; init; }
}
