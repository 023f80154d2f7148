using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>Sinkhorn-Knopp teacher targets (Caron et al. 2020, SwAV; DINOv2 <c>sinkhorn_knopp_teacher</c>).</summary>
public static class SinkhornKnopp
{
    /// <summary>
    /// Turns teacher scores [B, K] into soft assignments [B, K] whose rows sum to 1 and whose
    /// prototypes are used equally across the batch. Computed in float32 without gradients.
    /// </summary>
    /// <param name="teacherOutput">Teacher prototype scores [B, K].</param>
    /// <param name="teacherTemp">Teacher temperature (&gt; 0).</param>
    /// <param name="iterations">Number of row/column normalisation rounds (DINOv2 uses 3).</param>
    public static Tensor Normalize(Tensor teacherOutput, double teacherTemp, int iterations = 3)
    {
        ArgumentNullException.ThrowIfNull(teacherOutput);
        if (teacherOutput.dim() != 2)
            throw new ArgumentException($"must be [samples, prototypes], got shape [{string.Join(", ", teacherOutput.shape)}]", nameof(teacherOutput));
        if (!(teacherTemp > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemp), teacherTemp, "must be positive");
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "must not be negative");

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var scores = teacherOutput.to(ScalarType.Float32).DividedBy(teacherTemp);
        // Subtracting the global maximum changes nothing after the first normalisation but keeps exp finite.
        var q = (scores - scores.max()).exp().t();
        var b = q.shape[1];
        var k = q.shape[0];
        q = q / q.sum();
        for (var it = 0; it < iterations; it++)
        {
            // Each prototype receives total weight 1/K, then each sample 1/B.
            q = (q / q.sum(1, keepdim: true)).DividedBy(k);
            q = (q / q.sum(dim: 0, keepdim: true)).DividedBy(b);
        }
        q = q.Times(b);
        return q.t().contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Normalize(Tensor, double, int)"/> over the rows of every part together, each part on its own device:
    /// DINOv2's <c>sinkhorn_knopp_teacher</c> with the sums it all-reduces over ranks (the total, and each prototype's
    /// weight) summed over the parts, and the per-sample normalisation done within each part. Returns each part's
    /// assignments on its device; a part may have no rows.
    /// </summary>
    public static Tensor[] Normalize(IReadOnlyList<Tensor> parts, double teacherTemp, int iterations = 3)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0) throw new ArgumentException("needs at least one part", nameof(parts));
        if (parts.Any(part => part is null || part.dim() != 2))
            throw new ArgumentException("every part must be [samples, prototypes]", nameof(parts));
        if (parts.Select(part => part.shape[1]).Distinct().Count() != 1)
            throw new ArgumentException("every part must have the same number of prototypes", nameof(parts));
        if (!(teacherTemp > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemp), teacherTemp, "must be positive");
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "must not be negative");

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var home = parts[0].device;
        var scores = parts.Select(part => part.to(ScalarType.Float32).DividedBy(teacherTemp)).ToArray();
        var nonEmpty = scores.Where(part => part.shape[0] > 0).ToArray();
        if (nonEmpty.Length == 0)
            return scores.Select(part => part.clone().MoveToOuterDisposeScope()).ToArray();
        var max = torch.stack(nonEmpty.Select(part => part.max().to(home)).ToArray()).max();
        var q = scores.Select(part => (part - max.to(part.device)).exp().t()).ToArray();
        var b = q.Sum(part => part.shape[1]);
        var k = q[0].shape[0];
        var total = ReplicaSums.Sum(q.Select(part => part.sum()).ToArray(), home);
        q = q.Select(part => part / total.to(part.device)).ToArray();
        for (var it = 0; it < iterations; it++)
        {
            var rows = ReplicaSums.Sum(q.Select(part => part.sum(1, keepdim: true)).ToArray(), home);
            q = q.Select(part => (part / rows.to(part.device)).DividedBy(k)).ToArray();
            q = q.Select(part => (part / part.sum(dim: 0, keepdim: true)).DividedBy(b)).ToArray();
        }
        return q.Select(part => part.Times(b).t().contiguous().MoveToOuterDisposeScope()).ToArray();
    }
}
