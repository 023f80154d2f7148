using System.Text.Json;
using System.Text.Json.Serialization;
using NvDinoPipeline.Contracts;

namespace NvDinoPipeline.State;

/// <summary>One step of a pipeline's plan: the stage it runs and the steps whose output it needs.</summary>
/// <param name="Reuses">
/// A finished job, of another pipeline, whose output stands for this step: a single action (TAO's <c>parent_job_id</c>)
/// reuses what its parent's pipeline made. Null for a step the pipeline runs itself.
/// </param>
public sealed record PipelineStep(string Name, PipelineStage Stage, IReadOnlyList<string> DependsOn, Guid? Reuses = null)
{
    public const string StageTrain = "stage-train";
    public const string StageTest = "stage-test";
    public const string Train = "train";
    public const string Distill = "distill";
    public const string Export = "export";
    public const string Engine = "engine";
    public const string Inference = "inference";
    public const string Evaluate = "evaluate";

    /// <summary>
    /// How the steps of an AutoML search's trials begin: a trial is a training job that is not a step of the plan but a
    /// child of the <see cref="Train"/> step's search job; each trial (and each Hyperband rung it reaches) is a step of
    /// its own, so that it too runs once per attempt.
    /// </summary>
    public const string TrialStepPrefix = "automl-trial-";

    /// <summary><c>automl-trial-3</c>, or <c>automl-trial-3-rung-1</c> for a trial Hyperband promoted.</summary>
    public static string TrialStep(int number, int rung) => rung == 0 ? $"{TrialStepPrefix}{number}" : $"{TrialStepPrefix}{number}-rung-{rung}";

    public static bool IsTrialStep(string step) => step.StartsWith(TrialStepPrefix, StringComparison.Ordinal);

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The plan as stored with the pipeline: a JSON array of <c>{"name", "stage", "depends_on"[, "reuses"]}</c>.</summary>
    public static string Serialize(IEnumerable<PipelineStep> plan) => JsonSerializer.Serialize(plan.ToList(), Json);

    /// <summary>Reads a stored plan (the JsonPlans migration converted the colon form of earlier releases).</summary>
    public static IReadOnlyList<PipelineStep> Deserialize(string plan) => JsonSerializer.Deserialize<List<PipelineStep>>(plan, Json) ?? [];

    /// <summary>
    /// The jobs of other pipelines a stored plan reuses; none for a plan that cannot be read, so that loading the
    /// pipeline (to fail it, or to list it with the others) does not fail with it.
    /// </summary>
    public static IReadOnlyList<Guid> ReusedJobs(string plan)
    {
        try
        {
            return Deserialize(plan).Where(step => step.Reuses is not null).Select(step => step.Reuses!.Value).ToList();
        }
        catch (JsonException)
        {
            return [];
        }
    }
}
