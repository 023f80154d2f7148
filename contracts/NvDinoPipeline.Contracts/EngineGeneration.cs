namespace NvDinoPipeline.Contracts;

public sealed record GenerateEngine : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The export job.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required Uri OnnxModelUri { get; init; }

    public required Uri ModelMetadataUri { get; init; }

    /// <summary>Images for INT8 calibration and engine verification.</summary>
    public Uri? CalibrationDatasetUri { get; init; }
}

public sealed record EngineGenerated : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required Uri ArtifactUri { get; init; }

    /// <summary><c>tensorrt</c> or <c>onnxruntime</c>.</summary>
    public required string Target { get; init; }

    /// <summary><c>fp32</c>, <c>fp16</c> or <c>int8</c>.</summary>
    public required string Precision { get; init; }

    public required Uri ModelMetadataUri { get; init; }

    public required int MinBatchSize { get; init; }

    public required int OptBatchSize { get; init; }

    public required int MaxBatchSize { get; init; }
}
