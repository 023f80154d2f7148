using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

public sealed class PipelineRecord
{
    public required Guid Id { get; init; }

    public string? Name { get; set; }

    public JobStatus Status { get; set; }

    /// <summary>The steps this pipeline runs, in order: JSON written by <see cref="PipelineStep.Serialize"/>.</summary>
    public required string Plan { get; set; }

    public required string Spec { get; set; }

    public required string TrainDataUri { get; set; }

    public string? TestDataUri { get; set; }

    /// <summary>Where the pipeline's results and final event are also sent; null when the start named none.</summary>
    public string? ResultsQueue { get; set; }

    /// <summary>The content type those messages are written in, that of the start message; null is the bus default.</summary>
    public string? ResultsContentType { get; set; }

    public PipelineStage? FailedStage { get; set; }

    /// <summary>The W3C trace context of the pipeline's start (<c>00-trace-span-flags</c>): every stage job's span is its child.</summary>
    public string? TraceParent { get; set; }

    public string? ErrorReason { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime UpdatedAt { get; set; }

    public DateTime? CompletedAt { get; set; }

    /// <summary>Optimistic concurrency: two hosts never advance the same pipeline at once.</summary>
    public int Version { get; set; }
}
