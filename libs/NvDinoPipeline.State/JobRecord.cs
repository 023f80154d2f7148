using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

public sealed class JobRecord
{
    public required Guid Id { get; init; }

    public required Guid PipelineId { get; init; }

    public Guid? ParentJobId { get; set; }

    /// <summary>The pipeline step this job runs (e.g. <c>stage-train</c>, <c>train</c>, <c>export</c>).</summary>
    public required string Step { get; init; }

    public required PipelineStage Stage { get; init; }

    /// <summary>1 for the first run of a step; a resume creates the next attempt.</summary>
    public int Attempt { get; init; } = 1;

    public JobStatus Status { get; set; }

    public required string Spec { get; set; }

    /// <summary>The command that runs this job, as sent (JSON), so it can be sent again.</summary>
    public required string CommandType { get; set; }

    public required string Command { get; set; }

    /// <summary>The stage's completion event (JSON), so a redelivered command can publish it again.</summary>
    public string? CompletionType { get; set; }

    public string? Completion { get; set; }

    /// <summary>Set once the orchestrator has advanced the pipeline past this job.</summary>
    public DateTime? HandledAt { get; set; }

    /// <summary>Artifact name → URI (JSON object).</summary>
    public string Artifacts { get; set; } = "{}";

    /// <summary>Metric name → value (JSON object): last progress figures, then final metrics.</summary>
    public string Metrics { get; set; } = "{}";

    public double? Progress { get; set; }

    public string? ProgressMessage { get; set; }

    public string? ErrorReason { get; set; }

    public string? WorkerId { get; set; }

    public DateTime? LeaseExpiresAt { get; set; }

    public int Claims { get; set; }

    public DateTime CreatedAt { get; set; }

    public DateTime? StartedAt { get; set; }

    public DateTime UpdatedAt { get; set; }

    public DateTime? CompletedAt { get; set; }

    public int Version { get; set; }
}
