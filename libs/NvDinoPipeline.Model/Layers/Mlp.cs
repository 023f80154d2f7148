using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>Two-layer perceptron with exact (erf) GELU.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;

    public Mlp(int dim, int hiddenDim, string name = "Mlp") : base(name)
    {
        fc1 = nn.Linear(dim, hiddenDim, hasBias: true);
        fc2 = nn.Linear(hiddenDim, dim, hasBias: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = fc1.forward(x);
        using var activated = nn.functional.gelu(hidden);
        return fc2.forward(activated);
    }
}
