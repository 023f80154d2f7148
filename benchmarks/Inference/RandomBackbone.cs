using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx;

/// <summary>A DINOv2 backbone with random weights (trained at 518, patch 14, as TAO's), exported for a fixed input side.</summary>
internal static class RandomBackbone
{
    public static (string ModelPath, string MetadataPath, int Dimension) Export(string name, int side, string folder)
    {
        var (dim, depth, heads) = name switch
        {
            "vit_s" => (384, 12, 6),
            "vit_b" => (768, 12, 12),
            "vit_t" => (192, 4, 3),
            _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_t (4 blocks, for a quick look), vit_s or vit_b."),
        };
        var config = new VitGraphConfig { EmbedDim = dim, Depth = depth, NumHeads = heads, PatchSize = 14, ImageSize = 518 };
        var rng = new Random(7);
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
        var linear = 1f / MathF.Sqrt(dim);
        Add("cls_token", 0.02f, 0, 1, 1, dim);
        Add("pos_embed", 0.02f, 0, 1, 1 + grid * grid, dim);
        Add("patch_embed.proj.weight", 0.05f, 0, dim, 3, 14, 14);
        Add("patch_embed.proj.bias", 0.01f, 0, dim);
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
            Add(b + "mlp.fc1.weight", linear, 0, 4 * dim, dim);
            Add(b + "mlp.fc1.bias", 0.01f, 0, 4 * dim);
            Add(b + "mlp.fc2.weight", 1f / MathF.Sqrt(4 * dim), 0, dim, 4 * dim);
            Add(b + "mlp.fc2.bias", 0.01f, 0, dim);
            Add(b + "ls2.gamma", 0.05f, 0.1f, dim);
        }
        Add("norm.weight", 0.1f, 1, dim);
        Add("norm.bias", 0.01f, 0, dim);

        var model = VitOnnxBuilder.Build(config, weights, new VitExportOptions { Height = side, Width = side });
        var modelPath = Path.Combine(folder, "model.onnx");
        OnnxModelWriter.Save(model, modelPath);
        var metadata = new ModelMetadata
        {
            OnnxFile = "model.onnx",
            Opset = 17,
            Input = new TensorDescription("input", [-1, 3, side, side]),
            Outputs = [new TensorDescription("output", [-1, dim])],
            DynamicBatch = true,
            DynamicHeightWidth = false,
            Preprocessing = new Preprocessing { Height = side, Width = side },
            Backbone = new BackboneDescription { Type = name, PatchSize = 14, EmbedDim = dim, Depth = depth, NumHeads = heads, TrainedImageSize = 518 },
        };
        var metadataPath = Path.Combine(folder, "model.json");
        File.WriteAllText(metadataPath, metadata.ToJson());
        return (modelPath, metadataPath, dim);
    }
}
