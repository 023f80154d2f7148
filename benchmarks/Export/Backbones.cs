using NvDinoPipeline.Onnx;

/// <summary>DINOv2 backbones (patch 14, 518 training resolution as in TAO) with random state-dict weights.</summary>
internal static class Backbones
{
    public static (VitGraphConfig Config, Dictionary<string, NamedWeight> Weights) Random(string name)
    {
        // TAO's NVDINOv2 uses SwiGLU FFNs; hidden size follows DINOv2's SwiGLUFFNFused rounding of 4·D·2/3.
        var (dim, depth, heads, ffn) = name switch
        {
            "vit_s" => (384, 12, 6, VitFfnKind.Mlp),
            "vit_b" => (768, 12, 12, VitFfnKind.Mlp),
            "vit_l" => (1024, 24, 16, VitFfnKind.SwiGlu),
            "vit_g" => (1536, 40, 24, VitFfnKind.SwiGlu),
            _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_s, vit_b, vit_l or vit_g."),
        };
        var config = new VitGraphConfig { EmbedDim = dim, Depth = depth, NumHeads = heads, PatchSize = 14, ImageSize = 518, Ffn = ffn };
        var rng = new System.Random(7);
        var weights = new Dictionary<string, NamedWeight>();

        void Add(string key, float scale, float mean, params long[] shape)
        {
            var data = new float[shape.Aggregate(1L, (a, d) => a * d)];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = mean + scale * (rng.NextSingle() * 2 - 1);
            }

            weights[key] = new NamedWeight(data, shape);
        }

        var grid = config.GridSize;
        Add("cls_token", 0.02f, 0, 1, 1, dim);
        Add("pos_embed", 0.02f, 0, 1, 1 + grid * grid, dim);
        Add("patch_embed.proj.weight", 0.05f, 0, dim, 3, 14, 14);
        Add("patch_embed.proj.bias", 0.01f, 0, dim);
        var hidden = ffn == VitFfnKind.Mlp ? 4 * dim : (4 * dim * 2 / 3 + 7) / 8 * 8;
        var linear = 1f / MathF.Sqrt(dim);
        for (var i = 0; i < depth; i++)
        {
            var b = $"blocks.{i}.";
            Add(b + "norm1.weight", 0.1f, 1, dim);
            Add(b + "norm1.bias", 0.01f, 0, dim);
            Add(b + "attn.qkv.weight", linear, 0, 3 * dim, dim);
            Add(b + "attn.qkv.bias", 0.01f, 0, 3 * dim);
            Add(b + "attn.proj.weight", linear, 0, dim, dim);
            Add(b + "attn.proj.bias", 0.01f, 0, dim);
            Add(b + "ls1.gamma", 0.05f, 0.1f, dim);
            Add(b + "norm2.weight", 0.1f, 1, dim);
            Add(b + "norm2.bias", 0.01f, 0, dim);
            if (ffn == VitFfnKind.Mlp)
            {
                Add(b + "mlp.fc1.weight", linear, 0, hidden, dim);
                Add(b + "mlp.fc1.bias", 0.01f, 0, hidden);
                Add(b + "mlp.fc2.weight", 1f / MathF.Sqrt(hidden), 0, dim, hidden);
                Add(b + "mlp.fc2.bias", 0.01f, 0, dim);
            }
            else
            {
                Add(b + "mlp.w12.weight", linear, 0, 2 * hidden, dim);
                Add(b + "mlp.w12.bias", 0.01f, 0, 2 * hidden);
                Add(b + "mlp.w3.weight", 1f / MathF.Sqrt(hidden), 0, dim, hidden);
                Add(b + "mlp.w3.bias", 0.01f, 0, dim);
            }

            Add(b + "ls2.gamma", 0.05f, 0.1f, dim);
        }

        Add("norm.weight", 0.1f, 1, dim);
        Add("norm.bias", 0.01f, 0, dim);
        return (config, weights);
    }
}
