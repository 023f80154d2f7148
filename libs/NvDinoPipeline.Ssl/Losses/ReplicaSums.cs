using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>
/// The all-reduce of DINOv2's distributed losses, for data-parallel replicas in one process: each replica's partial
/// sum is copied to one device and added there.
/// </summary>
public static class ReplicaSums
{
    /// <summary>Σ of <paramref name="parts"/> (same shape, any devices) on <paramref name="device"/>.</summary>
    public static Tensor Sum(IReadOnlyList<Tensor> parts, Device device)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("needs at least one part", nameof(parts));
        using var scope = torch.NewDisposeScope();
        var total = parts[0].to(device);
        for (var i = 1; i < parts.Count; i++)
            total = total.Plus(parts[i].to(device));
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>The float32 mean over the rows of every part [n_i, K] together, on <paramref name="device"/>, as [K].</summary>
    public static Tensor MeanOverRows(IReadOnlyList<Tensor> parts, Device device)
    {
        ArgumentNullException.ThrowIfNull(parts);
        using var scope = torch.NewDisposeScope();
        var rows = parts.Sum(part => part.shape[0]);
        var sums = parts.Select(part => part.to(ScalarType.Float32).sum(dim: 0)).ToArray();
        return Sum(sums, device).DividedBy(rows).MoveToOuterDisposeScope();
    }
}
