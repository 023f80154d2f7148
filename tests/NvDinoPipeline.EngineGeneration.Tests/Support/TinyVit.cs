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

    public static Dictionary<string, NamedWeight> Weights(VitGraphConfig config, int seed) => RandomVit.Weights(config, seed);

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
