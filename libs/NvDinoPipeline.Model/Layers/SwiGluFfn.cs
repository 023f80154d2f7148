using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>
/// SwiGLU feed-forward (Shazeer 2020, "GLU Variants Improve Transformer"), fused input projection as in
/// DINOv2's <c>SwiGLUFFNFused</c>: w3(silu(x1) · x2) with x1, x2 = w12(x).chunk(2).
/// </summary>
public sealed class SwiGluFfn : nn.Module<Tensor, Tensor>
{
    private readonly Linear w12;
    private readonly Linear w3;

    /// <param name="hiddenDim">Already-rounded hidden width (see <see cref="BackboneConfig.FfnHiddenDim"/>).</param>
    public SwiGluFfn(int dim, int hiddenDim, string name = "SwiGluFfn") : base(name)
    {
        w12 = nn.Linear(dim, 2 * hiddenDim, hasBias: true);
        w3 = nn.Linear(hiddenDim, dim, hasBias: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var halves = w12.forward(x).chunk(2, dim: -1);
        var hidden = nn.functional.silu(halves[0]) * halves[1];
        return w3.forward(hidden).MoveToOuterDisposeScope();
    }
}
