using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Heads;

/// <summary>
/// Bias-free linear layer with explicit weight normalisation, <c>W = g · V / ‖V‖</c> per output row
/// (Salimans &amp; Kingma 2016), stored as PyTorch's <c>weight_norm</c> does: <c>weight_g</c> [out, 1]
/// and <c>weight_v</c> [out, in]. The magnitude <c>weight_g</c> is fixed to 1 and frozen, so every
/// prototype is a unit vector (DINO's <c>norm_last_layer</c>).
/// </summary>
public sealed class WeightNormLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight_g;
    private readonly Parameter weight_v;

    public WeightNormLinear(long inFeatures, long outFeatures) : base(nameof(WeightNormLinear))
    {
        if (inFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(inFeatures), inFeatures, "must be positive");
        if (outFeatures <= 0) throw new ArgumentOutOfRangeException(nameof(outFeatures), outFeatures, "must be positive");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight_g = new Parameter(torch.ones(outFeatures, 1), requires_grad: false);
        var v = torch.empty(outFeatures, inFeatures);
        // nn.Linear's default initialisation, which DINOv2's last layer keeps.
        nn.init.kaiming_uniform_(v, a: Math.Sqrt(5));
        weight_v = new Parameter(v);
        RegisterComponents();
    }

    public long InFeatures { get; }

    public long OutFeatures { get; }

    /// <summary>The effective weight <c>g · V / ‖V‖</c> [out, in].</summary>
    public Tensor Weight()
    {
        using var norm = weight_v.norm(1, keepdim: true);
        using var scale = weight_g / norm;
        return weight_v * scale;
    }

    public override Tensor forward(Tensor input)
    {
        using var weight = Weight();
        return nn.functional.linear(input, weight);
    }
}
