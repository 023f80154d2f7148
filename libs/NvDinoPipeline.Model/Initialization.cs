using static TorchSharp.torch;

namespace NvDinoPipeline.Model;

/// <summary>Weight initialisers that TorchSharp lacks or gets wrong.</summary>
public static class Initialization
{
    /// <summary>
    /// Fills <paramref name="tensor"/> in place from N(mean, std²) truncated to [a, b] (absolute bounds, as
    /// torch.nn.init.trunc_normal_): inverse-CDF sampling of a uniform draw between the bounds' CDF values.
    /// TorchSharp 0.107's nn.init.trunc_normal_ returns a constant tensor, so backbones use this instead.
    /// </summary>
    public static Tensor TruncatedNormal(Tensor tensor, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (std <= 0 || a >= b)
            throw new ArgumentException($"Truncated normal needs std > 0 and a < b, got std {std}, [{a}, {b}].");
        using var noGrad = no_grad();
        var lower = NormalCdf((a - mean) / std);
        var upper = NormalCdf((b - mean) / std);
        tensor.uniform_(2 * lower - 1, 2 * upper - 1);
        tensor.erfinv_();
        tensor.TimesInPlace(std * Math.Sqrt(2.0));
        tensor.PlusInPlace(mean);
        tensor.ClampedInPlace(a, b);
        return tensor;
    }

    private static double NormalCdf(double x)
    {
        using var value = tensor(x / Math.Sqrt(2.0), ScalarType.Float64);
        using var erf = value.erf();
        return (1.0 + erf.item<double>()) / 2.0;
    }
}
