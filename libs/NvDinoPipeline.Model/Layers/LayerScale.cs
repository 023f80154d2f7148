using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>Per-channel residual scaling (Touvron et al. 2021, "Going deeper with Image Transformers").</summary>
public sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;

    public LayerScale(int dim, double initValue, string name = "LayerScale") : base(name)
    {
        using var value = initValue.ToScalar();
        gamma = nn.Parameter(full(dim, value));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * gamma;
}
