namespace NvDinoPipeline.State;

/// <summary>A live worker process and the stages it serves; refreshed by heartbeat.</summary>
public sealed class WorkerRecord
{
    public required string Id { get; init; }

    public required string Stages { get; set; }

    public required string HostName { get; set; }

    public DateTime StartedAt { get; set; }

    public DateTime LastSeenAt { get; set; }
}
