namespace NvDinoPipeline.State;

/// <summary>A live worker process and the stages it serves; refreshed by heartbeat.</summary>
public sealed class WorkerRecord
{
    public required string Id { get; init; }

    public required string Stages { get; set; }

    public required string HostName { get; set; }

    /// <summary>Where the process's HTTP API answers (<c>http://127.0.0.1:41234/</c>); null when it serves none.</summary>
    public string? Endpoint { get; set; }

    /// <summary>The CUDA devices the process can train on (0 on a CPU host): what <c>train.num_gpus</c> is checked against.</summary>
    public int Gpus { get; set; }

    public DateTime StartedAt { get; set; }

    public DateTime LastSeenAt { get; set; }
}
