using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>Multi-head self-attention with a fused qkv projection (DINOv2's <c>Attention</c>).</summary>
public sealed class Attention : nn.Module<Tensor, Tensor>
{
    private readonly Linear qkv;
    private readonly Linear proj;
    private readonly int numHeads;

    public Attention(int dim, int numHeads, string name = "Attention") : base(name)
    {
        this.numHeads = numHeads;
        qkv = nn.Linear(dim, dim * 3, hasBias: true);
        proj = nn.Linear(dim, dim, hasBias: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (batch, tokens, channels) = (x.shape[0], x.shape[1], x.shape[2]);
        var heads = qkv.forward(x)
            .reshape(batch, tokens, 3, numHeads, channels / numHeads)
            .permute(2, 0, 3, 1, 4)
            .unbind(0);
        var attended = nn.functional.scaled_dot_product_attention(heads[0], heads[1], heads[2]);
        var merged = attended.transpose(1, 2).reshape(batch, tokens, channels);
        return proj.forward(merged).MoveToOuterDisposeScope();
    }
}
