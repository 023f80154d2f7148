using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Cli;

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
    DateTime? CompletedAt);

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
    IReadOnlyList<StepView> Steps)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    public bool Finished => Status is JobStatus.Done or JobStatus.Error or JobStatus.Canceled;
}

/// <summary>Reads pipelines from the state database: status, list and watch need no running host.</summary>
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

    private static PipelineView View(PipelineRecord pipeline, List<JobRecord> jobs, IReadOnlySet<string>? served)
    {
        var steps = PipelineStep.Deserialize(pipeline.Plan).Select(step =>
        {
            var job = jobs.Where(j => j.Step == step.Name).OrderByDescending(j => j.Attempt).FirstOrDefault();
            string? waiting = null;
            if (served is not null && pipeline.Status == JobStatus.Running)
            {
                if (job is null)
                {
                    waiting = "waiting for " + string.Join(" and ", step.DependsOn);
                }
                else if (job.Status == JobStatus.Pending && !served.Contains(step.Stage.ToString()))
                {
                    waiting = $"waiting for a worker: no {step.Stage} worker is running";
                }
            }
            return new StepView(step.Name, step.Stage, job?.Id, job?.ParentJobId, job?.Attempt ?? 0, job?.Status, job?.Progress,
                job?.ProgressMessage, Parse<double>(job?.Metrics), Parse<string>(job?.Artifacts), job?.WorkerId,
                job?.ErrorReason, waiting, job?.StartedAt, job?.CompletedAt);
        }).ToList();
        return new PipelineView(pipeline.Id, pipeline.Name, pipeline.Status, pipeline.FailedStage, pipeline.ErrorReason,
            pipeline.TrainDataUri, pipeline.TestDataUri, pipeline.CreatedAt, pipeline.CompletedAt, steps);
    }

    private static IReadOnlyDictionary<string, T> Parse<T>(string? json) =>
        string.IsNullOrEmpty(json) ? new Dictionary<string, T>() : JsonSerializer.Deserialize<Dictionary<string, T>>(json) ?? [];
}

public static class PipelineRendering
{
    public static string Render(PipelineView view, bool bars)
    {
        var text = new StringBuilder();
        text.AppendLine($"pipeline {view.Id}{(view.Name is null ? "" : $" ({view.Name})")}: {view.Status}");
        if (view.Error is not null)
        {
            text.AppendLine($"  reason: {(view.FailedStage is null ? "" : $"{view.FailedStage}: ")}{view.Error}");
        }
        foreach (var step in view.Steps)
        {
            var status = step.Status?.ToString() ?? "-";
            var line = new StringBuilder($"  {step.Step,-12} {status,-9}");
            if (bars)
            {
                line.Append(' ').Append(Bar(step.Status == JobStatus.Done ? 1.0 : step.Progress ?? 0));
            }
            else if (step.Progress is { } progress && step.Status == JobStatus.Running)
            {
                line.Append($" {progress,4:P0}");
            }
            var detail = step.Error ?? step.Waiting ?? step.Message;
            if (detail is not null)
            {
                line.Append("  ").Append(detail);
            }
            if (step.JobId is { } jobId)
            {
                line.Append($"  [job {jobId}{(step.Attempt > 1 ? $", attempt {step.Attempt}" : "")}]");
            }
            text.AppendLine(line.ToString());
        }
        return text.ToString();
    }

    private static string Bar(double fraction)
    {
        const int width = 20;
        var filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * width);
        return $"[{new string('#', filled)}{new string('.', width - filled)}] {fraction,4:P0}";
    }
}
