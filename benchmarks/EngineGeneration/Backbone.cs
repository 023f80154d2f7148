using NvDinoPipeline.Onnx;
using NvDinoPipeline.Testing;

/// <summary>DINOv2 ViT backbones with random weights, trained size = benchmark size, and their analytic FLOPs.</summary>
internal static class Backbone
{
    public static VitGraphConfig Config(string name, int imageSize) => name switch
    {
        "vit_t" => new VitGraphConfig { EmbedDim = 192, Depth = 12, NumHeads = 3, PatchSize = 14, ImageSize = imageSize },
        "vit_s" => new VitGraphConfig { EmbedDim = 384, Depth = 12, NumHeads = 6, PatchSize = 14, ImageSize = imageSize },
        "vit_b" => new VitGraphConfig { EmbedDim = 768, Depth = 12, NumHeads = 12, PatchSize = 14, ImageSize = imageSize },
        _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_t, vit_s or vit_b."),
    };

    /// <summary>
    /// FLOPs of one image (a multiply-add is 2), counting the patch-embedding convolution and every matrix product:
    /// per block 24·N·D² (q, k, v, proj, fc1, fc2 with a 4·D MLP) + 4·N²·D (q·kᵀ and softmax·v). LayerNorm, softmax,
    /// GELU and residual adds are left out (under 1 % here), as is customary.
    /// </summary>
    public static double Flops(VitGraphConfig c)
    {
        double patches = (c.ImageSize / c.PatchSize) * (c.ImageSize / c.PatchSize);
        double n = 1 + patches, d = c.EmbedDim;
        var patchEmbed = 2 * patches * d * (3.0 * c.PatchSize * c.PatchSize);
        var block = 24 * n * d * d + 4 * n * n * d;
        return patchEmbed + c.Depth * block;
    }

    public static Dictionary<string, NamedWeight> RandomWeights(VitGraphConfig c, int seed) => RandomVit.Weights(c, seed);
}
