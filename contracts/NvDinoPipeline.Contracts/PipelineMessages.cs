using System.Text.Json.Serialization;

namespace NvDinoPipeline.Contracts;

public sealed record StartPipeline
{
    public required Guid PipelineId { get; init; }

    /// <summary>
    /// Unlabeled training images: an archive, a folder or an S3 prefix; null takes them from the spec's
    /// <c>dataset.train_dataset.images_dir</c>.
    /// </summary>
    public Uri? TrainDataUri { get; init; }

    /// <summary>
    /// Images to embed once the model is deployed; null takes them from the spec's <c>dataset.test_dataset.images_dir</c>,
    /// and without either inference is skipped.
    /// </summary>
    public Uri? TestDataUri { get; init; }

    /// <summary>
    /// The spec: only the keys that differ from the templates, or a whole resolved spec, as a JSON object or as JSON or
    /// YAML text. The orchestrator merges it over its templates, validates it and stores the resolved spec.
    /// </summary>
    [JsonConverter(typeof(SpecTextJsonConverter))]
    public required string Spec { get; init; }

    public string? Name { get; init; }

    /// <summary>
    /// A queue the product declares (durable) when it accepts the pipeline, and sends the pipeline's
    /// <see cref="EmbeddingsBatch"/> messages and its final PipelineCompleted, PipelineFailed or PipelineCanceled to, in
    /// the serialization this message came in. Null: results only on the exchanges.
    /// </summary>
    public string? ResultsQueue { get; init; }

    public required DateTimeOffset RequestedAt { get; init; }
}

public sealed record CancelPipeline
{
    public required Guid PipelineId { get; init; }

    public string? Reason { get; init; }
}

public sealed record ResumePipeline
{
    public required Guid PipelineId { get; init; }
}

public sealed record PipelineStarted
{
    public required Guid PipelineId { get; init; }

    public required IReadOnlyList<PipelineStage> Stages { get; init; }

    public required DateTimeOffset StartedAt { get; init; }
}

public sealed record PipelineResumed
{
    public required Guid PipelineId { get; init; }

    public required PipelineStage FromStage { get; init; }

    public required DateTimeOffset ResumedAt { get; init; }
}

public sealed record PipelineCompleted
{
    public required Guid PipelineId { get; init; }

    /// <summary>The deployed model artifact (engine or ONNX Runtime model).</summary>
    public required Uri DeployArtifactUri { get; init; }

    /// <summary>Artifacts of the final stage: embeddings file, inference.csv; empty without inference.</summary>
    public required IReadOnlyDictionary<string, Uri> Results { get; init; }

    public required DateTimeOffset CompletedAt { get; init; }
}

public sealed record PipelineFailed
{
    public required Guid PipelineId { get; init; }

    public required PipelineStage Stage { get; init; }

    public required Guid JobId { get; init; }

    public required string Reason { get; init; }

    public required DateTimeOffset FailedAt { get; init; }
}

public sealed record PipelineCanceled
{
    public required Guid PipelineId { get; init; }

    public string? Reason { get; init; }

    public required DateTimeOffset CanceledAt { get; init; }
}
