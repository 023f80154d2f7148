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

    /// <summary>
    /// One action on its own instead of the whole pipeline, by TAO's name: <c>train</c>, <c>distill</c>, <c>export</c>,
    /// <c>gen_trt_engine</c>, <c>inference</c> or <c>evaluate</c>; null runs the pipeline. The action's inputs come from
    /// <see cref="ParentJobId"/>'s artifacts, its spec is the parent's with <see cref="Spec"/> merged over it, and
    /// <see cref="TrainDataUri"/> is not used (<see cref="TestDataUri"/>, when given, is staged for <c>inference</c> and
    /// <c>evaluate</c>).
    /// </summary>
    public string? Action { get; init; }

    /// <summary>
    /// The finished job an <see cref="Action"/> continues from (TAO API's <c>parent_job_id</c>): a staging or training job
    /// for <c>train</c> (a training job's model becomes <c>train.pretrained_model_path</c>), a training job for
    /// <c>distill</c>, a training or distillation job for <c>export</c>, an export job for <c>gen_trt_engine</c>, an engine
    /// job for <c>inference</c>, an engine or inference job for <c>evaluate</c>.
    /// </summary>
    public Guid? ParentJobId { get; init; }

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

    /// <summary>The deployed model artifact (engine or ONNX Runtime model); null for a single action that deployed none.</summary>
    public Uri? DeployArtifactUri { get; init; }

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
