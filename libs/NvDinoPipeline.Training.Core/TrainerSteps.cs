using NvDinoPipeline.Ssl.Optimization;
using TorchSharp;
using TorchSharp.Modules;

namespace NvDinoPipeline.Training.Core;

/// <summary>The parts of an optimisation step that training and distillation take the same way.</summary>
internal static class TrainerSteps
{
    /// <summary>
    /// Clips each trained part (backbone, DINO head, iBOT head, projection) on its own, as DINOv2 does, and returns the
    /// norm of all their gradients together. <paramref name="clipGradNorm"/> of 0 or less measures without clipping.
    /// </summary>
    public static double ClipPerPart(IEnumerable<(string Prefix, torch.nn.Module Module)> parts, double clipGradNorm)
    {
        var squared = 0.0;
        foreach (var (_, module) in parts)
        {
            var parameters = module.parameters().Where(p => p.grad is not null).ToList();
            if (parameters.Count == 0)
                continue;
            // An infinite limit measures the norm without clipping.
            var limit = clipGradNorm > 0 ? clipGradNorm : double.PositiveInfinity;
            var norm = torch.nn.utils.clip_grad_norm_(parameters, limit);
            squared += norm * norm;
        }
        return Math.Sqrt(squared);
    }

    /// <summary>AdamW's per-parameter states named after the parameters they belong to, for a checkpoint.</summary>
    /// <exception cref="InvalidOperationException">The optimizer's states do not line up with the parameters.</exception>
    public static List<(string Name, AdamW.State State)> OptimizerStates(
        ScheduledAdamW optimizer, IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        // TorchSharp keeps AdamW's per-parameter state in the order the groups list their parameters.
        var states = optimizer.Optimizer.state_dict().State;
        if (states.Count != parameters.Count)
            throw new InvalidOperationException($"The optimizer holds {states.Count} parameter states for {parameters.Count} parameters.");
        var result = new List<(string, AdamW.State)>(states.Count);
        for (var i = 0; i < states.Count; i++)
        {
            var adam = (AdamW.State)states[i];
            if (!adam.exp_avg.shape.SequenceEqual(parameters[i].Parameter.shape))
                throw new InvalidOperationException($"Optimizer state {i} does not match parameter '{parameters[i].Name}'.");
            result.Add((parameters[i].Name, adam));
        }
        return result;
    }
}
