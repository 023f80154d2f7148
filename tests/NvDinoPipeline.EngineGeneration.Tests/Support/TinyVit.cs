using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.EngineGeneration.Tests.Support;

/// <summary>A small DINOv2 ViT (MLP FFN, LayerScale) with random weights, exported as the export stage would.</summary>
internal static class TinyVit
{
    public const int EmbedDim = 48;
    public const int ImageSize = 32;
    public const int PatchSize = 4;

    public static VitGraphConfig Config(int depth = 3) => new()
    {
        EmbedDim = EmbedDim,
        Depth = depth,
        NumHeads = 3,
        PatchSize = PatchSize,
        ImageSize = ImageSize,
    };

    public static ModelProto Build(int depth = 3, int seed = 7, int batchSize = -1)
    {
        var config = Config(depth);
        return VitOnnxBuilder.Build(config, Weights(config, seed), new VitExportOptions { BatchSize = batchSize });
    }

    public static Dictionary<string, NamedWeight> Weights(VitGraphConfig config, int seed)
    {
        var rng = new Random(seed);
        var weights = new Dictionary<string, NamedWeight>();
        var d = config.EmbedDim;
        void Add(string key, float scale, float mean, params long[] shape)
        {
            var data = new float[shape.Aggregate(1L, (a, s) => a * s)];
            for (var i = 0; i < data.Length; i++)
            {
                data[i] = mean + scale * (rng.NextSingle() * 2 - 1);
            }

            weights[key] = new NamedWeight(data, shape);
        }

        var grid = config.GridSize;
        var p = config.PatchSize;
        Add("cls_token", 0.02f, 0, 1, 1, d);
        Add("pos_embed", 0.02f, 0, 1, 1 + grid * grid, d);
        Add("patch_embed.proj.weight", 1f / MathF.Sqrt(3 * p * p), 0, d, 3, p, p);
        Add("patch_embed.proj.bias", 0.01f, 0, d);
        var linear = 1f / MathF.Sqrt(d);
        for (var i = 0; i < config.Depth; i++)
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

    /// <summary>The export stage's <c>model.json</c> for <see cref="Build"/>.</summary>
    public static ModelMetadata Metadata(int depth = 3, int batchSize = -1) => new()
    {
        OnnxFile = "model.onnx",
        Opset = 17,
        Input = new TensorDescription("input", [batchSize, 3, ImageSize, ImageSize]),
        Outputs = [new TensorDescription("output", [batchSize, EmbedDim])],
        DynamicBatch = batchSize == -1,
        DynamicHeightWidth = false,
        Preprocessing = new Preprocessing { Height = ImageSize, Width = ImageSize },
        Backbone = new BackboneDescription
        {
            Type = "vit_tiny_test",
            PatchSize = PatchSize,
            EmbedDim = EmbedDim,
            Depth = depth,
            NumHeads = 3,
            TrainedImageSize = ImageSize,
        },
    };
}
