using NvDinoPipeline.Onnx;
using NvDinoPipeline.Testing;

/// <summary>DINOv2 backbones (patch 14, 518 training resolution as in TAO) with random state-dict weights.</summary>
internal static class Backbones
{
    public static (VitGraphConfig Config, Dictionary<string, NamedWeight> Weights) Random(string name)
    {
        // TAO's NVDINOv2 uses SwiGLU FFNs for its large backbones.
        var (dim, depth, heads, ffn) = name switch
        {
            "vit_s" => (384, 12, 6, VitFfnKind.Mlp),
            "vit_b" => (768, 12, 12, VitFfnKind.Mlp),
            "vit_l" => (1024, 24, 16, VitFfnKind.SwiGlu),
            "vit_g" => (1536, 40, 24, VitFfnKind.SwiGlu),
            _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_s, vit_b, vit_l or vit_g."),
        };
        var config = new VitGraphConfig { EmbedDim = dim, Depth = depth, NumHeads = heads, PatchSize = 14, ImageSize = 518, Ffn = ffn };
        return (config, RandomVit.Weights(config, seed: 7, new RandomVit.Scales { PatchWeight = 0.05f, LayerScaleMean = 0.1f }));
    }
}
