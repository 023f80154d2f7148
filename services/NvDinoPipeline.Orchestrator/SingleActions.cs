using System.Text.Json;
using System.Text.Json.Nodes;
using NvDinoPipeline.Automl;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;
using static NvDinoPipeline.State.PipelineStep;

namespace NvDinoPipeline.Orchestrator;

/// <summary>What is wrong with a single-action request, and which field or key it concerns (for an API's 4xx answer).</summary>
public sealed class ActionRequestException(ActionProblem problem, string field, string message) : Exception(message)
{
    public ActionProblem Problem { get; } = problem;

    /// <summary>The request field (<c>action</c>, <c>parent_job_id</c>, <c>test_data</c>) or spec key that is wrong.</summary>
    public string Field { get; } = field;
}

public enum ActionProblem
{
    /// <summary>The request itself is wrong: an unknown action, a parent of the wrong stage, a spec that does not validate.</summary>
    Invalid,

    /// <summary>No such parent job.</summary>
    UnknownParent,

    /// <summary>The parent job exists but has not finished.</summary>
    ParentNotDone,
}

/// <summary>A single action, planned: the steps it reuses (and their jobs, of other pipelines) and runs, and the spec it runs with.</summary>
public sealed record ActionPlan(string Action, IReadOnlyList<PipelineStep> Steps, IReadOnlyList<JobRecord> Reused, ResolvedSpec Spec,
    string TrainDataUri, string? TestDataUri);

/// <summary>
/// TAO API's single actions with a <c>parent_job_id</c>: one stage run on its own, its inputs filled from what its
/// parent's pipeline made (as TAO's parent-model mappings do), the parent's spec with the request's keys merged over
/// it. The steps the action needs and another pipeline already finished are reused (<see cref="PipelineStep.Reuses"/>),
/// never run again.
/// </summary>
public static class SingleActions
{
    private sealed record Action(string Step, PipelineStage Stage, PipelineStage[] Parents, bool NeedsTestData);

    private static readonly Dictionary<string, Action> Actions = new(StringComparer.Ordinal)
    {
        ["train"] = new(Train, PipelineStage.Training, [PipelineStage.Staging, PipelineStage.Training], false),
        ["distill"] = new(Distill, PipelineStage.Distillation, [PipelineStage.Training], false),
        ["export"] = new(Export, PipelineStage.Export, [PipelineStage.Training, PipelineStage.Distillation], false),
        ["gen_trt_engine"] = new(Engine, PipelineStage.EngineGeneration, [PipelineStage.Export], false),
        ["inference"] = new(Inference, PipelineStage.Inference, [PipelineStage.EngineGeneration], true),
        ["evaluate"] = new(Evaluate, PipelineStage.Evaluation, [PipelineStage.EngineGeneration, PipelineStage.Inference], true),
    };

    /// <summary>The action names, in the order the pipeline runs them.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Actions.Keys];

    /// <summary>TAO's name of the action that runs <paramref name="stage"/> (<c>gen_trt_engine</c> for engine generation).</summary>
    public static string NameOf(PipelineStage stage) => StageCatalog.For(stage).SpecSection;

    /// <summary>
    /// Plans <paramref name="action"/> after <paramref name="parentJob"/> of the pipeline <paramref name="parent"/>.
    /// </summary>
    /// <param name="requestSpec">The request's spec text (only the keys it changes), merged over the parent's.</param>
    /// <param name="testData">Test images to stage for <c>inference</c> and <c>evaluate</c>; null reuses the parent pipeline's.</param>
    /// <exception cref="ActionRequestException">What makes the request impossible, naming the field or key.</exception>
    public static ActionPlan Plan(string action, PipelineState parent, JobRecord parentJob, string requestSpec, Uri? testData, SpecLoader specs)
    {
        if (!Actions.TryGetValue(action, out var chosen))
        {
            throw new ActionRequestException(ActionProblem.Invalid, "action",
                $"unknown action '{action}'; one of {string.Join(", ", Names)}");
        }
        if (parentJob.Status != JobStatus.Done)
        {
            throw new ActionRequestException(ActionProblem.ParentNotDone, "parent_job_id",
                $"parent job {parentJob.Id} ({parentJob.Stage}) is {parentJob.Status}; an action continues from a finished job");
        }
        var allowed = chosen.Parents.Contains(parentJob.Stage) && !(parentJob.Stage == PipelineStage.Staging && parentJob.Step != StageTrain);
        if (!allowed)
        {
            throw new ActionRequestException(ActionProblem.Invalid, "parent_job_id",
                $"parent job {parentJob.Id} is a {parentJob.Stage} job ({parentJob.Step}); {action} continues from "
                + string.Join(" or ", chosen.Parents.Select(p => p == PipelineStage.Staging ? "a training-data staging job" : $"a {p} job")));
        }

        // What the parent's job was made from, and the job itself: every step it depends on, transitively.
        var reused = new List<PipelineStep>();
        var reusedJobs = new List<JobRecord>();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        // An AutoML trial stands for the train step it was a candidate for (its own step is in no plan).
        var parentStep = IsTrialStep(parentJob.Step) ? Train : parentJob.Step;
        var pending = new Stack<string>([parentStep]);
        while (pending.TryPop(out var name))
        {
            if (wanted.Add(name) && parent.Plan.FirstOrDefault(s => s.Name == name) is { } step)
            {
                foreach (var dependency in step.DependsOn)
                {
                    pending.Push(dependency);
                }
            }
        }
        // The parent pipeline's staged test images come along (reused) even where this action needs none, so that an
        // action after it (inference after a gen_trt_engine action) still finds them.
        var test = testData is null && parent.IsDone(StageTest);
        if (test)
        {
            wanted.Add(StageTest);
        }
        if (testData is not null)
        {
            wanted.Remove(StageTest);
        }
        // A training job's own step is not reused by the training it starts: the new job takes that name.
        wanted.Remove(chosen.Step);
        foreach (var step in parent.Plan.Where(s => wanted.Contains(s.Name)))
        {
            var job = step.Name == parentStep ? parentJob : parent.Latest(step.Name);
            if (job is not { Status: JobStatus.Done })
            {
                throw new ActionRequestException(ActionProblem.ParentNotDone, "parent_job_id",
                    $"step {step.Name} of pipeline {parent.Pipeline.Id} has not finished; the action needs its output");
            }
            // Its dependencies stay recorded (they are reused too), so that an action after this one finds them.
            reused.Add(new PipelineStep(step.Name, step.Stage, step.DependsOn.Where(wanted.Contains).ToList(), job.Id));
            reusedJobs.Add(job);
        }
        if (chosen.NeedsTestData && testData is null && !test)
        {
            throw new ActionRequestException(ActionProblem.Invalid, "test_data",
                $"{action} needs test images: give test data, or a parent whose pipeline staged some (pipeline {parent.Pipeline.Id} staged none)");
        }

        var steps = new List<PipelineStep>(reused);
        if (chosen.NeedsTestData && testData is not null)
        {
            steps.Add(new PipelineStep(StageTest, PipelineStage.Staging, []));
        }
        var model = steps.Any(s => s.Name == Distill) ? Distill : Train;
        IReadOnlyList<string> dependsOn = chosen.Step switch
        {
            Train => [StageTrain],
            Distill => [Train],
            Export => [model, StageTrain],
            Engine => [Export, StageTrain],
            Inference => [Engine, StageTest],
            _ => [Engine, StageTest, StageTrain],
        };
        steps.Add(new PipelineStep(chosen.Step, chosen.Stage, dependsOn));

        var documents = new List<SpecDocument> { new("parent spec", parent.Pipeline.Spec) };
        if (chosen.Step == Train && parentJob.Stage == PipelineStage.Training && parentJob.Completion is { } completion
            && JsonSerializer.Deserialize<TrainingCompleted>(completion) is { } trained)
        {
            // TAO's parent-model mapping for train: the parent's model is where the new training starts.
            var fill = new JsonObject { ["train"] = new JsonObject { ["pretrained_model_path"] = trained.TeacherBackboneUri.ToString() } };
            documents.Add(new SpecDocument("parent model", fill.ToJsonString()));
        }
        documents.Add(new SpecDocument("spec", requestSpec));
        ResolvedSpec spec;
        try
        {
            spec = specs.ResolveDocuments(documents, []);
        }
        catch (SpecValidationException exception)
        {
            throw new ActionRequestException(ActionProblem.Invalid, exception.Errors.FirstOrDefault()?.Key ?? "spec",
                "The spec is not valid: " + string.Join("; ", exception.Errors));
        }
        if (chosen.Step == Train && AutomlStart.Problem(specs, ref spec) is { } automlProblem)
        {
            throw new ActionRequestException(ActionProblem.Invalid, AutomlSettings.HyperparametersKey, automlProblem);
        }
        return new ActionPlan(action, steps, reusedJobs, spec, parent.Pipeline.TrainDataUri,
            testData?.ToString() ?? (test ? parent.Pipeline.TestDataUri : null));
    }
}
