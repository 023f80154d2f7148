using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl;

/// <summary>Weight initialisers missing or wrong in TorchSharp.</summary>
public static class TensorInit
{
    /// <summary>
    /// Fills <paramref name="tensor"/> in place from N(mean, std²) truncated to [a, b], by inverse-CDF
    /// sampling as PyTorch's <c>nn.init.trunc_normal_</c>. TorchSharp 0.107's <c>trunc_normal_</c>
    /// swaps mean and std and drops the √2 factor (with mean 0 it fills a constant), so it is not used.
    /// </summary>
    public static Tensor TruncNormal_(Tensor tensor, double std = 1.0, double mean = 0.0, double a = -2.0, double b = 2.0, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), std, "must be positive");
        if (!(a < b)) throw new ArgumentOutOfRangeException(nameof(b), b, $"must exceed a = {a}");
        var lower = NormalCdf((a - mean) / std);
        var upper = NormalCdf((b - mean) / std);
        using var noGrad = torch.no_grad();
        tensor.uniform_(2 * lower - 1, 2 * upper - 1, generator);
        tensor.erfinv_();
        tensor.TimesInPlace(std * Math.Sqrt(2.0));
        tensor.PlusInPlace(mean);
        tensor.ClampedInPlace(a, b);
        return tensor;
    }

    private static double NormalCdf(double x) => (1.0 + Erf(x / Math.Sqrt(2.0))) / 2.0;

    // .NET has no erf; libtorch computes it to double precision.
    private static double Erf(double x)
    {
        using var t = torch.tensor(x, dtype: ScalarType.Float64);
        using var e = t.erf();
        return e.item<double>();
    }
}
