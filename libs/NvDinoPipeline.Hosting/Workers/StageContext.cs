using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Hosting.Workers;

public sealed record StageProgress(double? Fraction, string? Message, IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>What a stage runner gets besides its command: the spec, its folders and a way to report.</summary>
public sealed class StageContext(
    IStageMessage job,
    PipelineStage stage,
    ResolvedSpec spec,
    Uri outputUri,
    string scratchDirectory,
    ILogger logger,
    Func<StageProgress, bool, CancellationToken, Task> report,
    CancellationToken saveOnStop = default)
{
    public Guid PipelineId => job.PipelineId;

    public Guid JobId => job.JobId;

    public Guid? ParentJobId => job.ParentJobId;

    public PipelineStage Stage => stage;

    public ResolvedSpec Spec => spec;

    /// <summary>The job's artifact folder (<c>&lt;root&gt;/&lt;pipelineId&gt;/&lt;jobId&gt;/</c>).</summary>
    public Uri OutputUri => outputUri;

    /// <summary>A local folder of the job's own, kept across a restart of the same job.</summary>
    public string ScratchDirectory => scratchDirectory;

    public ILogger Logger => logger;

    /// <summary>
    /// Live while a job that was told to stop (its process is stopping, or the job was canceled) may still save its
    /// work, such as a checkpoint, so that the next attempt continues from it: canceled when the process's shutdown
    /// time is nearly spent, and at once when the job's claim was lost to another worker (the job folder is no longer
    /// this run's to write).
    /// </summary>
    public CancellationToken SaveOnStop => saveOnStop;

    /// <summary>Reports progress; calls closer together than the configured interval are dropped.</summary>
    public Task ReportAsync(StageProgress progress, CancellationToken cancellationToken) =>
        report(progress, false, cancellationToken);

    /// <summary>Reports progress that must not be dropped (an epoch's end, a checkpoint).</summary>
    public Task ReportNowAsync(StageProgress progress, CancellationToken cancellationToken) =>
        report(progress, true, cancellationToken);

    public Uri Output(string relativePath) => new(outputUri, relativePath);
}
