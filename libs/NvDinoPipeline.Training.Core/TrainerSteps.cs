using System.Globalization;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Ssl.Optimization;
using NvDinoPipeline.Training.Core.Data;
using TorchSharp;
using TorchSharp.Modules;

namespace NvDinoPipeline.Training.Core;

/// <summary>The parts of an optimisation step that training and distillation take the same way.</summary>
internal static class TrainerSteps
{
    /// <exception cref="InvalidOperationException">The batch was drawn for another step, or the run is complete.</exception>
    public static void CheckBatch(SslBatch batch, long globalStep, long totalSteps)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Step != globalStep)
            throw new InvalidOperationException($"The batch was drawn for step {batch.Step} but the trainer is at step {globalStep}.");
        if (globalStep >= totalSteps)
            throw new InvalidOperationException($"The run is complete: {globalStep} of {totalSteps} steps taken.");
    }

    /// <summary>
    /// DINOv2's optimizer groups: layer-wise decay and the patch-embed multiplier on the backbone (<paramref name="backboneDepth"/>
    /// blocks), none on the heads. Names carry the part prefix so every parameter has a unique name in the optimizer and
    /// the checkpoint; the list gives them in the optimizer's state order.
    /// </summary>
    public static (ScheduledAdamW Optimizer, List<(string Name, Parameter Parameter)> Parameters) BuildOptimizer(
        IEnumerable<(string Prefix, torch.nn.Module Module)> parts, int backboneDepth, SslOptimOptions optim)
    {
        var specs = new List<ParamGroupSpec>();
        foreach (var (prefix, module) in parts)
        {
            var named = module.named_parameters().Select(p => ($"{prefix}.{p.name}", p.parameter));
            var blocks = prefix == "backbone" ? backboneDepth : 0;
            specs.AddRange(ParamGroups.WithDecay(named, blocks, optim.LayerwiseDecay, optim.PatchEmbedLrMult));
        }
        var fused = ParamGroups.Fuse(specs);
        return (new ScheduledAdamW(fused, optim.Beta1, optim.Beta2), fused.SelectMany(g => g.Names.Zip(g.Parameters)).ToList());
    }

    /// <summary>
    /// Writes the run's state through <paramref name="saveFile"/> as <c>epoch_NNN.ckpt</c> (with the step when the epoch is
    /// not complete) and each backbone as safetensors beside it, stamped with the epoch.
    /// </summary>
    public static SavedCheckpoint SaveCheckpoint(string directory, int epoch, long globalStep, long iterationsPerEpoch,
        Action<string> saveFile, params (VisionTransformer Backbone, string FileName)[] backbones)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, CheckpointNames.FileName(epoch, globalStep % iterationsPerEpoch == 0 ? null : globalStep));
        saveFile(path);
        var metadata = new Dictionary<string, string> { ["nvdino.epoch"] = epoch.ToString(CultureInfo.InvariantCulture) };
        var written = new List<string>(backbones.Length);
        foreach (var (backbone, fileName) in backbones)
        {
            var backbonePath = Path.Combine(directory, fileName);
            BackboneWeights.Save(backbone, backbonePath, metadata);
            written.Add(backbonePath);
        }
        return new SavedCheckpoint(epoch, globalStep, path, written);
    }

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
