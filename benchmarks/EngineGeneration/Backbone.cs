using NvDinoPipeline.Onnx;
using NvDinoPipeline.Testing;

/// <summary>DINOv2 ViT backbones with random weights, trained size = benchmark size.</summary>
internal static class Backbone
{
    public static VitGraphConfig Config(string name, int imageSize) => name switch
    {
        "vit_t" => new VitGraphConfig { EmbedDim = 192, Depth = 12, NumHeads = 3, PatchSize = 14, ImageSize = imageSize },
        "vit_s" => new VitGraphConfig { EmbedDim = 384, Depth = 12, NumHeads = 6, PatchSize = 14, ImageSize = imageSize },
        "vit_b" => new VitGraphConfig { EmbedDim = 768, Depth = 12, NumHeads = 12, PatchSize = 14, ImageSize = imageSize },
        _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_t, vit_s or vit_b."),
    };

    public static Dictionary<string, NamedWeight> RandomWeights(VitGraphConfig c, int seed) => RandomVit.Weights(c, seed);
}
