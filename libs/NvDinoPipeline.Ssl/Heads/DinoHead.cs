using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Heads;

/// <summary>
/// DINO / iBOT projection head (DINOv2 <c>layers/dino_head.py</c>): an MLP with GELU down to a
/// bottleneck, an l2 normalisation, then a weight-normalised linear layer onto the prototypes.
/// Parameter names match DINOv2 checkpoints: <c>mlp.0.weight</c>, <c>mlp.0.bias</c>, <c>mlp.2.*</c>,
/// <c>mlp.4.*</c>, <c>last_layer.weight_g</c>, <c>last_layer.weight_v</c>. Use one instance for the
/// DINO (class token) loss and a separate one for the iBOT (patch token) loss.
/// </summary>
public sealed class DinoHead : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> mlp;
    private readonly WeightNormLinear last_layer;

    public DinoHead(
        long inDim,
        long outDim,
        int nLayers = 3,
        long hiddenDim = 2048,
        long bottleneckDim = 384,
        bool mlpBias = true) : base(nameof(DinoHead))
    {
        if (inDim <= 0) throw new ArgumentOutOfRangeException(nameof(inDim), inDim, "must be positive");
        if (outDim <= 0) throw new ArgumentOutOfRangeException(nameof(outDim), outDim, "must be positive (the number of prototypes)");
        if (hiddenDim <= 0) throw new ArgumentOutOfRangeException(nameof(hiddenDim), hiddenDim, "must be positive");
        if (bottleneckDim <= 0) throw new ArgumentOutOfRangeException(nameof(bottleneckDim), bottleneckDim, "must be positive");
        nLayers = Math.Max(nLayers, 1);

        InDim = inDim;
        OutDim = outDim;
        BottleneckDim = bottleneckDim;
        mlp = BuildMlp(nLayers, inDim, bottleneckDim, hiddenDim, mlpBias);
        InitMlpWeights(mlp);
        last_layer = new WeightNormLinear(bottleneckDim, outDim);
        RegisterComponents();
    }

    public long InDim { get; }

    public long OutDim { get; }

    public long BottleneckDim { get; }

    /// <summary>The weight-normalised prototype layer; its parameters are named <c>last_layer.*</c>.</summary>
    public WeightNormLinear LastLayer => last_layer;

    public override Tensor forward(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        var x = mlp.forward(input);
        var eps = x.dtype == ScalarType.Float16 ? 1e-6 : 1e-12;
        x = nn.functional.normalize(x, p: 2, dim: -1, eps: eps);
        return last_layer.forward(x).MoveToOuterDisposeScope();
    }

    private static nn.Module<Tensor, Tensor> BuildMlp(int nLayers, long inDim, long bottleneckDim, long hiddenDim, bool bias)
    {
        if (nLayers == 1)
            return nn.Linear(inDim, bottleneckDim, hasBias: bias);

        var layers = new List<nn.Module<Tensor, Tensor>> { nn.Linear(inDim, hiddenDim, hasBias: bias), nn.GELU() };
        for (var i = 0; i < nLayers - 2; i++)
        {
            layers.Add(nn.Linear(hiddenDim, hiddenDim, hasBias: bias));
            layers.Add(nn.GELU());
        }
        layers.Add(nn.Linear(hiddenDim, bottleneckDim, hasBias: bias));
        return nn.Sequential(layers);
    }

    private static void InitMlpWeights(nn.Module module)
    {
        using var noGrad = torch.no_grad();
        foreach (var (_, child) in module.named_modules().Prepend(("", module)))
        {
            if (child is not Linear linear)
                continue;
            TensorInit.TruncNormal_(linear.weight!, std: 0.02);
            if (linear.bias is not null)
                nn.init.zeros_(linear.bias);
        }
    }
}
