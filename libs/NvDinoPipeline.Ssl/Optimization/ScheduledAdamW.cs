using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Optimization;

/// <summary>
/// AdamW over DINOv2 parameter groups whose learning rate and weight decay are set every step from the
/// schedules (<c>apply_optim_scheduler</c>): lr = (last-layer lr or lr) · lr multiplier, weight decay =
/// wd · wd multiplier. TorchSharp's AdamW defaults to weight decay 0, so nothing is decayed until
/// <see cref="ApplySchedules"/> has run.
/// </summary>
public sealed class ScheduledAdamW : IDisposable
{
    private readonly List<(FusedParamGroup Spec, AdamW.ParamGroup Group)> groups;

    public ScheduledAdamW(IEnumerable<FusedParamGroup> parameterGroups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(parameterGroups);
        groups = parameterGroups
            .Select(spec => (spec, new AdamW.ParamGroup(spec.Parameters, new AdamW.Options
            {
                LearningRate = 0.0,
                weight_decay = 0.0,
                beta1 = beta1,
                beta2 = beta2,
                eps = eps,
                amsgrad = false,
                maximize = false,
            })))
            .ToList();
        if (groups.Count == 0)
            throw new ArgumentException("no trainable parameters", nameof(parameterGroups));
        Groups = groups.Select(g => g.Spec).ToList();
        Optimizer = torch.optim.AdamW(groups.Select(g => g.Group), lr: 0.0, beta1: beta1, beta2: beta2, eps: eps, weight_decay: 0.0);
    }

    public AdamW Optimizer { get; }

    public IReadOnlyList<FusedParamGroup> Groups { get; }

    /// <summary>Sets every group's learning rate and weight decay for the coming step.</summary>
    public void ApplySchedules(double lr, double weightDecay, double lastLayerLr)
    {
        foreach (var (spec, group) in groups)
        {
            group.Options.weight_decay = weightDecay * spec.WdMultiplier;
            group.Options.LearningRate = (spec.IsLastLayer ? lastLayerLr : lr) * spec.LrMultiplier;
        }
    }

    /// <summary>(learning rate, weight decay) currently set on each group, in <see cref="Groups"/> order.</summary>
    public IReadOnlyList<(double LearningRate, double WeightDecay)> CurrentSettings() =>
        groups.Select(g => (g.Group.Options.LearningRate ?? 0.0, g.Group.Options.weight_decay ?? 0.0)).ToList();

    public void ZeroGrad() => Optimizer.zero_grad();

    public void Step() => Optimizer.step();

    public void Dispose() => Optimizer.Dispose();
}
