using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>The work of one stage. The consumer around it claims the job, reports, completes or fails it.</summary>
public interface IStageRunner<in TCommand, TCompleted>
    where TCommand : class, IStageCommand
    where TCompleted : class, IStageCompleted
{
    Task<StageResult<TCompleted>> RunAsync(TCommand command, StageContext context, CancellationToken cancellationToken);
}

/// <summary>What a finished stage produced: its completion event, artifacts and figures.</summary>
public sealed record StageResult<TCompleted>(
    TCompleted Completed,
    IReadOnlyDictionary<string, Uri> Artifacts,
    IReadOnlyDictionary<string, double> Metrics)
    where TCompleted : class
{
    /// <summary>
    /// The result in one line ("8532 images staged", "3 epochs, final loss 4.1234"): recorded as the done job's status
    /// message, in the same write that marks it done, so a finished stage never shows a stale progress line.
    /// </summary>
    public string? Summary { get; init; }
}
