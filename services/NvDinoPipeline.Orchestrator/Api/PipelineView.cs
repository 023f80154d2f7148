using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator.Api;

public sealed record StepView(
    string Step,
    PipelineStage Stage,
    Guid? JobId,
    Guid? ParentJobId,
    int Attempt,
    JobStatus? Status,
    double? Progress,
    string? Message,
    IReadOnlyDictionary<string, double> Metrics,
    IReadOnlyDictionary<string, string> Artifacts,
    string? WorkerId,
    string? Error,
    string? Waiting,
    DateTime? StartedAt,
    DateTime? CompletedAt,
    Guid? ReusedFromPipeline = null);

/// <summary>One trial of an AutoML search (the latest attempt of each trial and rung): its values, its score, and whether it won.</summary>
public sealed record TrialView(
    int Trial,
    int Bracket,
    int Rung,
    string Step,
    Guid JobId,
    int Attempt,
    JobStatus Status,
    IReadOnlyDictionary<string, string> Parameters,
    double? Score,
    string Metric,
    int? Epochs,
    string? WorkerId,
    string? Error,
    bool Best);

public sealed record PipelineView(
    Guid Id,
    string? Name,
    JobStatus Status,
    PipelineStage? FailedStage,
    string? Error,
    string TrainData,
    string? TestData,
    DateTime CreatedAt,
    DateTime? CompletedAt,
    IReadOnlyList<StepView> Steps,
    string? Action = null)
{
    /// <summary>The trials of the pipeline's AutoML search, by trial and rung; empty without one.</summary>
    public IReadOnlyList<TrialView> Trials { get; init; } = [];

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public bool Finished => Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled;
}

/// <summary>Reads pipelines from the state database, for the API and for the CLI (status, list and watch need no running host).</summary>
public sealed class PipelineReader(PipelineStore pipelines, WorkerStore workers)
{
    public async Task<PipelineView?> ReadAsync(Guid pipelineId, CancellationToken cancellationToken)
    {
        if (await pipelines.ReadAsync(pipelineId, cancellationToken) is not { } found)
        {
            return null;
        }
        return View(found.Pipeline, found.Jobs, await workers.LiveStagesAsync(cancellationToken));
    }

    public async Task<IReadOnlyList<PipelineView>> ListAsync(int limit, CancellationToken cancellationToken) =>
        (await pipelines.ListAsync(limit, cancellationToken)).Select(p => View(p.Pipeline, p.Jobs, null)).ToList();

    /// <summary>What a waiting training or distillation job needs of the worker it waits for, when it asks for several GPUs.</summary>
    private static string GpusWanted(PipelineRecord pipeline, PipelineStage stage)
    {
        if (!GpuDemand.Stages.Contains(stage))
        {
            return "";
        }
        var spec = ResolvedSpec.FromJson(pipeline.Spec);
        return GpuDemand.Needed(spec) is var needed and > 0 ? $" ({GpuDemand.Asking(spec)}: it needs one on a host with {needed} GPUs)" : "";
    }

    internal static PipelineView View(PipelineRecord pipeline, List<JobRecord> jobs, IReadOnlySet<string>? served)
    {
        try
        {
            return FullView(pipeline, jobs, served);
        }
        catch (JsonException exception)
        {
            // A stored row this version cannot read (its plan, a job's figures) must not fail the list of every pipeline,
            // nor hide the pipeline's status and reason: it is shown with what its record says, without steps.
            return new PipelineView(pipeline.Id, pipeline.Name, pipeline.Status, pipeline.FailedStage,
                pipeline.ErrorReason ?? $"The pipeline's stored plan or job figures cannot be read: {exception.Message}",
                pipeline.TrainDataUri, pipeline.TestDataUri, pipeline.CreatedAt, pipeline.CompletedAt, []);
        }
    }

    private static PipelineView FullView(PipelineRecord pipeline, List<JobRecord> jobs, IReadOnlySet<string>? served)
    {
        var steps = PipelineStep.Deserialize(pipeline.Plan).Select(step =>
        {
            var job = step.Reuses is { } reused
                ? jobs.FirstOrDefault(j => j.Id == reused)
                : jobs.Where(j => j.Step == step.Name && j.PipelineId == pipeline.Id).OrderByDescending(j => j.Attempt).FirstOrDefault();
            string? waiting = null;
            if (served is not null && pipeline.Status == JobStatus.Running)
            {
                if (job is null)
                {
                    waiting = "waiting for " + string.Join(" and ", step.DependsOn);
                }
                else if (job.Status == JobStatus.Pending && !served.Contains(step.Stage.ToString()))
                {
                    waiting = $"waiting for a worker: no {step.Stage} worker is running{GpusWanted(pipeline, step.Stage)}";
                }
            }
            return new StepView(step.Name, step.Stage, job?.Id, job?.ParentJobId, job?.Attempt ?? 0, job?.Status, job?.Progress,
                job?.ProgressMessage, Parse<double>(job?.Metrics), Parse<string>(job?.Artifacts), job?.WorkerId,
                job?.ErrorReason, waiting, job?.StartedAt, job?.CompletedAt, step.Reuses is null ? null : job?.PipelineId);
        }).ToList();
        var plan = PipelineStep.Deserialize(pipeline.Plan);
        var action = plan.Any(s => s.Reuses is not null) ? SingleActions.NameOf(plan[^1].Stage) : null;
        return new PipelineView(pipeline.Id, pipeline.Name, pipeline.Status, pipeline.FailedStage, pipeline.ErrorReason,
            pipeline.TrainDataUri, pipeline.TestDataUri, pipeline.CreatedAt, pipeline.CompletedAt, steps, action)
        {
            Trials = Trials(jobs.Where(j => j.PipelineId == pipeline.Id).ToList()),
        };
    }

    private static IReadOnlyList<TrialView> Trials(List<JobRecord> jobs)
    {
        var winner = jobs.Where(j => AutomlSearches.IsSearch(j) && j.Status == JobStatus.Done && j.Completion is not null)
            .OrderByDescending(j => j.Attempt).Select(j => JsonSerializer.Deserialize<TrainingCompleted>(j.Completion!)?.JobId).FirstOrDefault();
        return jobs.Select(job => (Job: job, Trial: AutomlSearches.TrialOf(job)))
            .Where(t => t.Trial is not null)
            .GroupBy(t => t.Job.Step).Select(g => g.MaxBy(t => t.Job.Attempt))
            .OrderBy(t => t.Trial!.Number).ThenBy(t => t.Trial!.Rung)
            .Select(t => new TrialView(t.Trial!.Number, t.Trial.Bracket, t.Trial.Rung, t.Job.Step, t.Job.Id, t.Job.Attempt, t.Job.Status, t.Trial.Parameters,
                AutomlSearches.ScoreOf(t.Job), MetricOf(t.Job, t.Trial.Metric),
                t.Job.Completion is { } completion ? JsonSerializer.Deserialize<TrainingCompleted>(completion)?.Epochs : null,
                t.Job.WorkerId, t.Job.ErrorReason, t.Job.Id == winner))
            .ToList();
    }

    /// <summary>The metric a finished trial was scored by (<c>auto</c> resolves to knn or loss in the worker).</summary>
    private static string MetricOf(JobRecord job, string requested) =>
        job.Completion is { } completion && JsonSerializer.Deserialize<TrainingCompleted>(completion) is { } done
            ? done.Metrics.ContainsKey(AutomlTrial.KnnTop1Metric) ? "knn" : "loss"
            : requested;

    internal static IReadOnlyDictionary<string, T> Parse<T>(string? json) =>
        string.IsNullOrEmpty(json) ? new Dictionary<string, T>() : JsonSerializer.Deserialize<Dictionary<string, T>>(json) ?? [];
}
