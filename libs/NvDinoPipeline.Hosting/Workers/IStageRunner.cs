using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Hosting.Workers;

/// <summary>The work of one stage. The consumer around it claims the job, reports, completes or fails it.</summary>
public interface IStageRunner<in TCommand, TCompleted>
    where TCommand : class, IStageCommand
    where TCompleted : class, IStageCompleted
{
    Task<StageResult<TCompleted>> RunAsync(TCommand command, StageContext context, CancellationToken cancellationToken);
}

public sealed record StageResult<TCompleted>(
    TCompleted Completed,
    IReadOnlyDictionary<string, Uri> Artifacts,
    IReadOnlyDictionary<string, double> Metrics)
    where TCompleted : class;
