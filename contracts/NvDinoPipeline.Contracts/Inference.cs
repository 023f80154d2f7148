namespace NvDinoPipeline.Contracts;

public sealed record RunInference : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    /// <summary>The engine generation (or export) job whose artifact runs.</summary>
    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    public required Uri DeployArtifactUri { get; init; }

    public required string Target { get; init; }

    public required Uri ModelMetadataUri { get; init; }

    public required Uri DatasetUri { get; init; }

    public required Uri ManifestUri { get; init; }

    /// <summary>The pipeline's results queue: every batch is also sent there. Null: the results exchange only.</summary>
    public string? ResultsQueue { get; init; }

    /// <summary>The content type results queue messages are written in (<c>application/json</c>); null is the envelope.</summary>
    public string? ResultsContentType { get; init; }
}

public sealed record InferenceCompleted : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    /// <summary>TAO-compatible <c>inference.csv</c>: <c>input_path,features</c>.</summary>
    public required Uri CsvUri { get; init; }

    /// <summary>float32 N×D embeddings, row order as in the index.</summary>
    public required Uri EmbeddingsUri { get; init; }

    /// <summary>The ordered inputs of the embeddings file.</summary>
    public required Uri IndexUri { get; init; }

    public required int EmbeddedCount { get; init; }

    public required int FailedCount { get; init; }

    public required int Dimension { get; init; }
}

/// <summary>A batch of results on the results exchange; consumers bind their own queues.</summary>
public sealed record EmbeddingsBatch
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public required int BatchIndex { get; init; }

    public required IReadOnlyList<EmbeddingResult> Items { get; init; }
}

public sealed record EmbeddingResult
{
    /// <summary>Unique per job and input: de-duplicates at-least-once delivery.</summary>
    public required string Key { get; init; }

    public required string InputPath { get; init; }

    public required string ContentSha256 { get; init; }

    public required float[] Embedding { get; init; }
}

/// <summary>On-line request: embed these images now with a deployed model.</summary>
public sealed record EmbedImages
{
    public required Guid RequestId { get; init; }

    /// <summary>The pipeline whose deployed model embeds the images.</summary>
    public required Guid PipelineId { get; init; }

    public required IReadOnlyList<Uri> ImageUris { get; init; }
}

public sealed record ImagesEmbedded
{
    public required Guid RequestId { get; init; }

    public required IReadOnlyList<EmbeddingResult> Items { get; init; }

    /// <summary>Per input that could not be embedded: its URI and why.</summary>
    public required IReadOnlyDictionary<string, string> Failures { get; init; }
}
