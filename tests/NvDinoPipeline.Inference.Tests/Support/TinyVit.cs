using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>
/// A tiny DINOv2 ViT exported to ONNX with the project's graph builder (random weights, fixed seed), and the
/// <c>model.json</c> export writes beside it: 32×32 input, patch 8, 32-float embeddings.
/// </summary>
public sealed record TinyVit(string ModelPath, string MetadataPath, ModelMetadata Metadata)
{
    public const int Side = 32;
    public const int Dimension = 32;

    public Uri ModelUri => new(new Uri(ModelPath).AbsoluteUri);

    public Uri MetadataUri => new(new Uri(MetadataPath).AbsoluteUri);

    /// <param name="batchSize">-1 for a dynamic batch (TAO's default), else the fixed batch the model takes.</param>
    public static TinyVit Create(string folder, int batchSize = -1, int seed = 7)
    {
        Directory.CreateDirectory(folder);
        var config = new VitGraphConfig { EmbedDim = Dimension, Depth = 2, NumHeads = 4, PatchSize = 8, ImageSize = Side };
        var random = new Random(seed);
        var weights = new Dictionary<string, NamedWeight>();
        void Add(string key, long[] shape, float scale, float offset = 0)
        {
            var count = (int)shape.Aggregate(1L, (a, d) => a * d);
            var data = new float[count];
            for (var i = 0; i < count; i++)
            {
                data[i] = offset + scale * (random.NextSingle() * 2 - 1);
            }
            weights[key] = new NamedWeight(data, shape);
        }
        const int d = Dimension;
        var tokens = (Side / 8) * (Side / 8) + 1;
        Add("cls_token", [1, 1, d], 0.5f);
        Add("pos_embed", [1, tokens, d], 0.2f);
        Add("patch_embed.proj.weight", [d, 3, 8, 8], 0.1f);
        Add("patch_embed.proj.bias", [d], 0.1f);
        for (var b = 0; b < config.Depth; b++)
        {
            Add($"blocks.{b}.norm1.weight", [d], 0.1f, 1);
            Add($"blocks.{b}.norm1.bias", [d], 0.1f);
            Add($"blocks.{b}.attn.qkv.weight", [3 * d, d], 0.3f);
            Add($"blocks.{b}.attn.qkv.bias", [3 * d], 0.1f);
            Add($"blocks.{b}.attn.proj.weight", [d, d], 0.3f);
            Add($"blocks.{b}.attn.proj.bias", [d], 0.1f);
            Add($"blocks.{b}.ls1.gamma", [d], 0.2f, 0.5f);
            Add($"blocks.{b}.norm2.weight", [d], 0.1f, 1);
            Add($"blocks.{b}.norm2.bias", [d], 0.1f);
            Add($"blocks.{b}.mlp.fc1.weight", [4 * d, d], 0.3f);
            Add($"blocks.{b}.mlp.fc1.bias", [4 * d], 0.1f);
            Add($"blocks.{b}.mlp.fc2.weight", [d, 4 * d], 0.2f);
            Add($"blocks.{b}.mlp.fc2.bias", [d], 0.1f);
            Add($"blocks.{b}.ls2.gamma", [d], 0.2f, 0.5f);
        }
        Add("norm.weight", [d], 0.1f, 1);
        Add("norm.bias", [d], 0.1f);

        var model = VitOnnxBuilder.Build(config, weights, new VitExportOptions { BatchSize = batchSize });
        var modelPath = Path.Combine(folder, "model.onnx");
        OnnxModelWriter.Save(model, modelPath);
        var metadata = new ModelMetadata
        {
            OnnxFile = "model.onnx",
            Opset = 17,
            Input = new TensorDescription("input", [batchSize, 3, Side, Side]),
            Outputs = [new TensorDescription("output", [batchSize, Dimension])],
            DynamicBatch = batchSize == -1,
            DynamicHeightWidth = false,
            Preprocessing = new Preprocessing { Height = Side, Width = Side },
            Backbone = new BackboneDescription { Type = "vit_test", PatchSize = 8, EmbedDim = d, Depth = 2, NumHeads = 4, TrainedImageSize = Side },
        };
        var metadataPath = Path.Combine(folder, "model.json");
        File.WriteAllText(metadataPath, metadata.ToJson());
        return new TinyVit(modelPath, metadataPath, metadata);
    }

    /// <summary>
    /// What the model returns for one image, computed the reference way: the Onnx library's own runner over the
    /// image pre-processed alone (batch of one).
    /// </summary>
    public float[] Reference(TestImage image)
    {
        var preprocessor = new ImagePreprocessor(Metadata.Preprocessing);
        var input = new float[preprocessor.ImageSize];
        preprocessor.Preprocess(image.Rgb, image.Width, image.Height, input);
        using var runner = new OnnxModelRunner(ModelPath);
        var shape = Metadata.DynamicBatch ? new long[] { 1, 3, Side, Side } : [Metadata.Input.Shape[0], 3, Side, Side];
        if (!Metadata.DynamicBatch)
        {
            Array.Resize(ref input, (int)(Metadata.Input.Shape[0] * preprocessor.ImageSize));
        }
        return runner.Run(input, shape).Single(o => o.Name == "output").Data[..Dimension];
    }
}
