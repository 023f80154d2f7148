namespace NvDinoPipeline.State;

/// <summary>One log line a job's worker wrote while it ran the job, kept so that any client can read it, during and after the run.</summary>
public sealed class JobLogRecord
{
    /// <summary>Increasing over the whole table: a reader asks for the lines after the last one it has.</summary>
    public long Id { get; init; }

    public required Guid JobId { get; init; }

    public required DateTime Time { get; init; }

    /// <summary>Serilog's level name: <c>Information</c>, <c>Warning</c>, <c>Error</c>, ...</summary>
    public required string Level { get; init; }

    public required string Message { get; init; }
}
