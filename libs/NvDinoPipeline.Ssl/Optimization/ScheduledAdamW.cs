using NvDinoPipeline.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Optimization;

/// <summary>
/// AdamW over DINOv2 parameter groups whose learning rate and weight decay are set every step from the
/// schedules (<c>apply_optim_scheduler</c>): lr = (last-layer lr or lr) · lr multiplier, weight decay =
/// wd · wd multiplier. TorchSharp's AdamW defaults to weight decay 0, so nothing is decayed until
/// <see cref="ApplySchedules"/> has run. <see cref="Step"/> performs TorchSharp's AdamW update itself, operation for
/// operation, on the optimizer's own state: TorchSharp's <c>AdamW.step</c> passes its numbers to libtorch as Scalars
/// that a concurrent garbage collection can free mid-call (see <see cref="HeldScalars"/>).
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

    /// <summary>One AdamW step (Loshchilov and Hutter 2019) over every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var states = Optimizer.state_dict().State;
        var index = 0;
        foreach (var (_, group) in groups)
        {
            var options = (AdamW.Options)group.Options;
            var lr = options.LearningRate!.Value;
            var weightDecay = options.weight_decay!.Value;
            var beta1 = options.beta1!.Value;
            var beta2 = options.beta2!.Value;
            var eps = options.eps!.Value;
            foreach (var parameter in group.Parameters)
            {
                var state = (AdamW.State)states[index++];
                var grad = parameter.grad;
                if (grad is null)
                    continue;
                state.step += 1;
                parameter.TimesInPlace(1 - lr * weightDecay);
                var biasCorrection1 = 1 - Math.Pow(beta1, state.step);
                var biasCorrection2 = 1 - Math.Pow(beta2, state.step);
                state.exp_avg.TimesInPlace(beta1).PlusInPlace(grad, 1 - beta1);
                state.exp_avg_sq.TimesInPlace(beta2).AddcmulInPlace(grad, grad, 1 - beta2);
                var denominator = state.exp_avg_sq.sqrt().DividedBy(Math.Sqrt(biasCorrection2)).PlusInPlace(eps);
                parameter.AddcdivInPlace(state.exp_avg, denominator, -(lr / biasCorrection1));
            }
        }
    }

    public void Dispose() => Optimizer.Dispose();
}
