using System.Text;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Orchestrator.Api;

namespace NvDinoPipeline.Cli;

public static class PipelineRendering
{
    public static string Render(PipelineView view, bool bars)
    {
        var text = new StringBuilder();
        text.AppendLine($"{(view.Action is null ? "pipeline" : $"{view.Action} job")} {view.Id}{(view.Name is null ? "" : $" ({view.Name})")}: {view.Status}");
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
            var detail = step.Error ?? step.Waiting
                ?? (step.ReusedFromPipeline is { } from ? $"reused from pipeline {from}" : step.Message);
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
        if (view.Trials.Count > 0)
        {
            var metric = view.Trials.Select(t => t.Metric).FirstOrDefault(m => m != "auto") ?? "auto";
            text.AppendLine($"  AutoML trials ({metric} score{(metric == "loss" ? ": minus the final training loss" : "")}, higher is better; * won):");
            foreach (var trial in view.Trials)
            {
                var score = trial.Score is { } value ? value.ToString("0.####", System.Globalization.CultureInfo.InvariantCulture) : "-";
                var values = string.Join(" ", trial.Parameters.Select(p => $"{p.Key[(p.Key.LastIndexOf('.') + 1)..]}={p.Value}"));
                text.AppendLine($"    {(trial.Best ? "*" : " ")} {trial.Step,-24} {trial.Status,-9} {score,8}  {values}{(trial.Error is null ? "" : $"  {trial.Error}")}");
            }
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
