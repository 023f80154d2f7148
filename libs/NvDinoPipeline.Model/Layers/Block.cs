using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>Pre-norm transformer block: x + ls1(attn(norm1(x))), then x + ls2(mlp(norm2(x))).</summary>
public sealed class Block : nn.Module<Tensor, Tensor>
{
    // Below this rate DINOv2 masks whole samples; above it, computing the residual on the kept subset of the
    // batch only pays for its gather/scatter overhead.
    private const double SubsetDropThreshold = 0.1;

    private readonly LayerNorm norm1;
    private readonly Attention attn;
    private readonly LayerScale? ls1;
    private readonly LayerNorm norm2;
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly LayerScale? ls2;

    public Block(int dim, int numHeads, FfnLayer ffnLayer, int ffnHiddenDim, double? layerScaleInit, double dropPathRate, string name = "Block")
        : base(name)
    {
        DropPathRate = dropPathRate;
        norm1 = nn.LayerNorm(dim, eps: VisionTransformer.LayerNormEpsilon);
        attn = new Attention(dim, numHeads);
        ls1 = layerScaleInit is { } init1 ? new LayerScale(dim, init1) : null;
        norm2 = nn.LayerNorm(dim, eps: VisionTransformer.LayerNormEpsilon);
        mlp = ffnLayer == FfnLayer.SwiGlu ? new SwiGluFfn(dim, ffnHiddenDim) : new Mlp(dim, ffnHiddenDim);
        ls2 = layerScaleInit is { } init2 ? new LayerScale(dim, init2) : null;
        RegisterComponents();
    }

    /// <summary>Stochastic-depth probability of dropping this block's residuals for a sample while training.</summary>
    public double DropPathRate { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor result;
        if (training && DropPathRate > SubsetDropThreshold)
        {
            var afterAttention = AddResidualOnBatchSubset(x, AttentionResidual);
            result = AddResidualOnBatchSubset(afterAttention, FeedForwardResidual);
        }
        else if (training && DropPathRate > 0.0)
        {
            var afterAttention = x.Plus(DropPath(AttentionResidual(x)));
            result = afterAttention.Plus(DropPath(FeedForwardResidual(afterAttention)));
        }
        else
        {
            var afterAttention = x.Plus(AttentionResidual(x));
            result = afterAttention.Plus(FeedForwardResidual(afterAttention));
        }
        return result.MoveToOuterDisposeScope();
    }

    private Tensor AttentionResidual(Tensor x)
    {
        var y = attn.forward(norm1.forward(x));
        return ls1 is null ? y : ls1.forward(y);
    }

    private Tensor FeedForwardResidual(Tensor x)
    {
        var y = mlp.forward(norm2.forward(x));
        return ls2 is null ? y : ls2.forward(y);
    }

    // Stochastic depth (Huang et al. 2016): zero a sample's residual with probability p, scale the rest by 1/(1-p).
    private Tensor DropPath(Tensor residual)
    {
        var keep = 1.0 - DropPathRate;
        var shape = new long[residual.dim()];
        Array.Fill(shape, 1L);
        shape[0] = residual.shape[0];
        // A thread generator is a CPU generator: the few numbers are drawn on the CPU and copied to the device.
        var mask = TorchRandom.ThreadGenerator is { } generator
            ? empty(shape, ScalarType.Float32, CPU).bernoulli_(keep, generator).to(residual.dtype, residual.device).DividedByInPlace(keep)
            : empty(shape, residual.dtype, residual.device).bernoulli_(keep).DividedByInPlace(keep);
        return residual * mask;
    }

    // DINOv2's drop_add_residual_stochastic_depth: the residual is computed for a random subset of the batch only
    // and added back scaled by batch/subset, an unbiased estimate that skips the dropped samples' compute.
    private Tensor AddResidualOnBatchSubset(Tensor x, Func<Tensor, Tensor> residualFunction)
    {
        var batch = x.shape[0];
        var subsetSize = Math.Max((long)(batch * (1.0 - DropPathRate)), 1L);
        var subset = TorchRandom.ThreadGenerator is { } generator
            ? randperm(batch, device: CPU, generator: generator).slice(0, 0, subsetSize, 1).to(x.device)
            : randperm(batch, device: x.device).slice(0, 0, subsetSize, 1);
        var residual = residualFunction(x.index_select(0, subset));
        var scale = (double)batch / subsetSize;
        return x.flatten(1)
            .IndexAdd(0, subset, residual.flatten(1).to(x.dtype), scale)
            .view_as(x);
    }
}
