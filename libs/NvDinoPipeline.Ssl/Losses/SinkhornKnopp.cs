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
}
