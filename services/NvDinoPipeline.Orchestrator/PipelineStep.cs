using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.Orchestrator;

/// <summary>One step of a pipeline's plan: the stage it runs and the steps whose output it needs.</summary>
public sealed record PipelineStep(string Name, PipelineStage Stage, IReadOnlyList<string> DependsOn)
{
    public const string StageTrain = "stage-train";
    public const string StageTest = "stage-test";
    public const string Train = "train";
    public const string Distill = "distill";
    public const string Export = "export";
    public const string Engine = "engine";
    public const string Inference = "inference";

    public static string Serialize(IEnumerable<PipelineStep> plan) => string.Join(';', plan.Select(s => $"{s.Name}:{s.Stage}:{string.Join(',', s.DependsOn)}"));

    public static IReadOnlyList<PipelineStep> Deserialize(string plan) => plan
        .Split(';', StringSplitOptions.RemoveEmptyEntries)
        .Select(step => step.Split(':'))
        .Select(parts => new PipelineStep(parts[0], Enum.Parse<PipelineStage>(parts[1]),
            parts[2].Split(',', StringSplitOptions.RemoveEmptyEntries)))
        .ToList();
}
