using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Augmentation;

/// <summary>The crops of one image: normalised float32 [3, S, S] each.</summary>
public sealed class MultiCrops : IDisposable
{
    public required IReadOnlyList<Tensor> GlobalCrops { get; init; }

    public required IReadOnlyList<Tensor> LocalCrops { get; init; }

    /// <summary>
    /// Stacks the crops of a batch crop-major, as DINOv2's collate does: global [nG·B, 3, S, S]
    /// (all images' crop 0, then crop 1) and local [nL·B, 3, s, s], or null without local crops.
    /// </summary>
    public static (Tensor Global, Tensor? Local) Stack(IReadOnlyList<MultiCrops> batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) throw new ArgumentException("is empty", nameof(batch));
        var globalCount = batch[0].GlobalCrops.Count;
        var localCount = batch[0].LocalCrops.Count;
        if (batch.Any(c => c.GlobalCrops.Count != globalCount || c.LocalCrops.Count != localCount))
            throw new ArgumentException("every image must have the same number of global and local crops", nameof(batch));

        var global = torch.stack(Enumerable.Range(0, globalCount).SelectMany(i => batch.Select(c => c.GlobalCrops[i])));
        var local = localCount == 0 ? null : torch.stack(Enumerable.Range(0, localCount).SelectMany(i => batch.Select(c => c.LocalCrops[i])));
        return (global, local);
    }

    public void Dispose()
    {
        foreach (var t in GlobalCrops) t.Dispose();
        foreach (var t in LocalCrops) t.Dispose();
    }
}
