namespace NvDinoPipeline.Contracts;

public sealed record StageDataset : IStageCommand
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required string Spec { get; init; }

    public required Uri OutputUri { get; init; }

    /// <summary>An archive (.tar.gz, .tar, .zip), a folder or an S3 prefix of images.</summary>
    public required Uri SourceUri { get; init; }

    public required DatasetRole Role { get; init; }

    /// <summary>Stage again even when the same source was staged before.</summary>
    public bool Force { get; init; }
}

public sealed record DatasetStaged : IStageCompleted
{
    public required Guid PipelineId { get; init; }

    public required Guid JobId { get; init; }

    public Guid? ParentJobId { get; init; }

    public required DatasetRole Role { get; init; }

    /// <summary>Relative path, sha256, width, height and format of every usable image.</summary>
    public required Uri ManifestUri { get; init; }

    /// <summary>Count, size histogram, per-channel mean and std.</summary>
    public required Uri StatisticsUri { get; init; }

    /// <summary>The training-ready form of the images (decoded shards), read by the data loaders.</summary>
    public required Uri DatasetUri { get; init; }

    public required int ImageCount { get; init; }

    public required int SkippedCount { get; init; }

    public required int DuplicateCount { get; init; }

    /// <summary>True when an earlier staging of the same source was reused.</summary>
    public bool FromCache { get; init; }
}
