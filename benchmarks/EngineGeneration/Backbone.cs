using NvDinoPipeline.Onnx;

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

    public static Dictionary<string, NamedWeight> RandomWeights(VitGraphConfig c, int seed)
    {
        var rng = new Random(seed);
        var weights = new Dictionary<string, NamedWeight>();
        var d = c.EmbedDim;
        void Add(string key, float scale, float mean, params long[] shape)
        {
            var data = new float[shape.Aggregate(1L, (a, s) => a * s)];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = mean + scale * (rng.NextSingle() * 2 - 1);
            }

            weights[key] = new NamedWeight(data, shape);
        }

        var grid = c.GridSize;
        var p = c.PatchSize;
        Add("cls_token", 0.02f, 0, 1, 1, d);
        Add("pos_embed", 0.02f, 0, 1, 1 + grid * grid, d);
        Add("patch_embed.proj.weight", 1f / MathF.Sqrt(3 * p * p), 0, d, 3, p, p);
        Add("patch_embed.proj.bias", 0.01f, 0, d);
        var linear = 1f / MathF.Sqrt(d);
        for (var i = 0; i < c.Depth; i++)
        {
            var b = $"blocks.{i}.";
            Add(b + "norm1.weight", 0.1f, 1, d);
            Add(b + "norm1.bias", 0.01f, 0, d);
            Add(b + "attn.qkv.weight", linear, 0, 3 * d, d);
            Add(b + "attn.qkv.bias", 0.01f, 0, 3 * d);
            Add(b + "attn.proj.weight", linear, 0, d, d);
            Add(b + "attn.proj.bias", 0.01f, 0, d);
            Add(b + "ls1.gamma", 0.05f, 0.3f, d);
            Add(b + "norm2.weight", 0.1f, 1, d);
            Add(b + "norm2.bias", 0.01f, 0, d);
            Add(b + "mlp.fc1.weight", linear, 0, 4 * d, d);
            Add(b + "mlp.fc1.bias", 0.01f, 0, 4 * d);
            Add(b + "mlp.fc2.weight", 1f / MathF.Sqrt(4 * d), 0, d, 4 * d);
            Add(b + "mlp.fc2.bias", 0.01f, 0, d);
            Add(b + "ls2.gamma", 0.05f, 0.3f, d);
        }

        Add("norm.weight", 0.1f, 1, d);
        Add("norm.bias", 0.01f, 0, d);
        return weights;
    }
}
