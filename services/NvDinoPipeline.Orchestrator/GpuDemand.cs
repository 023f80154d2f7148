using NvDinoPipeline.Contracts;
using NvDinoPipeline.Specs;
using NvDinoPipeline.State;

namespace NvDinoPipeline.Orchestrator;

/// <summary>
/// The GPUs one host must give a pipeline's training and distillation jobs (<c>train.num_gpus</c>, <c>train.gpu_ids</c>),
/// against what the live workers report in their heartbeats. A start asking for more than every live worker of such a stage
/// offers is refused; while no worker of the stage is up the pipeline waits, and its status says for how many GPUs.
/// </summary>
public static class GpuDemand
{
    /// <summary>The stages whose jobs run data-parallel over the GPUs of their host.</summary>
    public static IReadOnlyList<PipelineStage> Stages { get; } = [PipelineStage.Training, PipelineStage.Distillation];

    /// <summary>The CUDA devices one job of <paramref name="spec"/> needs on its host; 0 when it runs on the one device its worker picks.</summary>
    public static int Needed(ResolvedSpec spec)
    {
        var gpus = spec.Get<int>("train.num_gpus");
        var ids = spec.Get<IReadOnlyList<double>>("train.gpu_ids") ?? [];
        return gpus <= 1 && ids.Count == 0 ? 0 : Math.Max(gpus, ids.Count == 0 ? 0 : (int)ids.Max() + 1);
    }

    /// <summary>The spec key that asks for the GPUs: <c>train.gpu_ids</c> when it lists any, else <c>train.num_gpus</c>.</summary>
    public static string Key(ResolvedSpec spec) =>
        spec.Get<IReadOnlyList<double>>("train.gpu_ids") is { Count: > 0 } ? "train.gpu_ids" : "train.num_gpus";

    /// <summary>The spec key that asks for the GPUs, with its value, for messages.</summary>
    public static string Asking(ResolvedSpec spec) => spec.Get<IReadOnlyList<double>>("train.gpu_ids") is { Count: > 0 } ids
        ? $"train.gpu_ids is [{string.Join(", ", ids)}]"
        : $"train.num_gpus is {spec.Get<int>("train.num_gpus")}";

    /// <summary>
    /// Why no live worker can run <paramref name="stages"/>' jobs of <paramref name="spec"/> (naming the key and what the
    /// workers offer), or null when one can, when the spec needs no GPU, or when no worker of the stage is up (then the
    /// pipeline waits for one).
    /// </summary>
    public static async Task<string?> ProblemAsync(WorkerStore workers, ResolvedSpec spec, IEnumerable<PipelineStage> stages,
        CancellationToken cancellationToken)
    {
        var needed = Needed(spec);
        if (needed == 0)
        {
            return null;
        }
        foreach (var stage in stages.Intersect(Stages).Distinct())
        {
            var offered = await workers.LiveGpusAsync(stage.ToString(), cancellationToken);
            if (offered.Count > 0 && offered.Max() < needed)
            {
                var counts = string.Join(" and ", offered.Distinct().Order());
                return $"{Asking(spec)}, so each {stage} job needs {needed} GPU(s) on one host, but the running {stage} workers have "
                    + $"{counts} GPU(s): start a {stage} worker on a host with {needed} GPUs, or lower train.num_gpus.";
            }
        }
        return null;
    }

    /// <summary>The stages a full pipeline of <paramref name="spec"/> trains in.</summary>
    public static IEnumerable<PipelineStage> PipelineStages(ResolvedSpec spec) =>
        spec.Get<bool>("pipeline.stages.distill") ? Stages : [PipelineStage.Training];
}
