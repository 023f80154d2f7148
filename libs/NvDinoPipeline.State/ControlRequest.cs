namespace NvDinoPipeline.State;

/// <summary>
/// A start, cancel or resume request left in the database for an embedded host: the in-memory
/// transport does not cross processes, the state database does.
/// </summary>
public sealed class ControlRequest
{
    public long Id { get; init; }

    public required string MessageType { get; init; }

    public required string Message { get; init; }

    public DateTime CreatedAt { get; init; }

    public DateTime? ProcessedAt { get; set; }
}
