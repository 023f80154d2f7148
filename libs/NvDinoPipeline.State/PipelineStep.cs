using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

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
    public const string Evaluate = "evaluate";

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The plan as stored with the pipeline: a JSON array of <c>{"name", "stage", "depends_on"}</c>.</summary>
    public static string Serialize(IEnumerable<PipelineStep> plan) => JsonSerializer.Serialize(plan.ToList(), Json);

    /// <summary>Reads a stored plan (the JsonPlans migration converted the colon form of earlier releases).</summary>
    public static IReadOnlyList<PipelineStep> Deserialize(string plan) => JsonSerializer.Deserialize<List<PipelineStep>>(plan, Json) ?? [];
}
