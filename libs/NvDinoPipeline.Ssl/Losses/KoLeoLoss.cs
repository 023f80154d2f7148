using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>
/// Kozachenko-Leonenko entropy regulariser (Sablayrolles et al. 2019, "Spreading vectors for
/// similarity search"; DINOv2 <c>loss/koleo_loss.py</c>): −mean log of each l2-normalised feature's
/// distance to its nearest neighbour in the batch, which pushes features apart.
/// </summary>
public static class KoLeoLoss
{
    /// <summary>
    /// KoLeo loss of features [B, D], computed in float32. A batch of one sample has no neighbour:
    /// the loss is then 0 (a constant with no gradient) instead of the meaningless log of the
    /// distance to itself, which is what makes DINOv2's version blow up or turn NaN at batch size 1.
    /// </summary>
    public static Tensor Compute(Tensor studentOutput, double eps = 1e-8)
    {
        ArgumentNullException.ThrowIfNull(studentOutput);
        if (studentOutput.dim() != 2 || studentOutput.shape[0] == 0)
            throw new ArgumentException($"must be [samples, features] with at least one sample, got shape [{string.Join(", ", studentOutput.shape)}]", nameof(studentOutput));
        if (studentOutput.shape[0] == 1)
            return torch.zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: studentOutput.device);

        using var scope = torch.NewDisposeScope();
        var x = nn.functional.normalize(studentOutput.to(ScalarType.Float32), p: 2, dim: -1, eps: eps);
        Tensor nearest;
        using (torch.no_grad())
        {
            var n = x.shape[0];
            var dots = x.mm(x.t());
            // The largest inner product of unit vectors is the smallest distance; exclude each sample itself.
            dots = dots.MaskedFilled(torch.eye(n, dtype: ScalarType.Bool, device: x.device), -1.0);
            nearest = dots.argmax(1);
        }
        var distances = nn.functional.pairwise_distance(x, x.index_select(0, nearest), p: 2, eps: eps);
        return (-distances.Plus(eps).log().mean()).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The KoLeo term of DINOv2's objective: the loss of each global crop's class tokens separately,
    /// summed (never between two views of the same image). Multiply by the KoLeo weight (0.1).
    /// </summary>
    /// <param name="studentGlobalClsTokens">Student backbone class tokens of the global crops [nG·B, D], crop-major.</param>
    /// <param name="globalCrops">nG.</param>
    public static Tensor PerGlobalCrop(Tensor studentGlobalClsTokens, int globalCrops = 2)
    {
        ArgumentNullException.ThrowIfNull(studentGlobalClsTokens);
        if (globalCrops < 1) throw new ArgumentOutOfRangeException(nameof(globalCrops), globalCrops, "must be positive");
        if (studentGlobalClsTokens.dim() != 2 || studentGlobalClsTokens.shape[0] % globalCrops != 0)
            throw new ArgumentException($"must be [{globalCrops}·B, D], got shape [{string.Join(", ", studentGlobalClsTokens.shape)}]", nameof(studentGlobalClsTokens));
        using var scope = torch.NewDisposeScope();
        Tensor? total = null;
        foreach (var chunk in studentGlobalClsTokens.chunk(globalCrops))
        {
            var term = Compute(chunk);
            total = total is null ? term : total.Plus(term);
        }
        return total!.MoveToOuterDisposeScope();
    }
}
