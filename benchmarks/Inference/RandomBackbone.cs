using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Testing;

/// <summary>A DINOv2 backbone with random weights (trained at 518, patch 14, as TAO's), exported for a fixed input side.</summary>
internal static class RandomBackbone
{
    public static int Depth(string name) => name == "vit_t" ? 4 : 12;

    public static (string ModelPath, string MetadataPath, int Dimension, double ImageFlops) Export(string name, int side, string folder)
    {
        var (dim, depth, heads) = name switch
        {
            "vit_s" => (384, 12, 6),
            "vit_b" => (768, 12, 12),
            "vit_t" => (192, 4, 3),
            _ => throw new ArgumentException($"Unknown backbone '{name}'; use vit_t (4 blocks, for a quick look), vit_s or vit_b."),
        };
        var config = new VitGraphConfig { EmbedDim = dim, Depth = depth, NumHeads = heads, PatchSize = 14, ImageSize = 518 };
        var weights = RandomVit.Weights(config, seed: 7, new RandomVit.Scales { PatchWeight = 0.05f, LayerScaleMean = 0.1f });
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
        return (modelPath, metadataPath, dim, NvDinoPipeline.Benchmarks.Harness.VitFlops.Forward(dim, depth, 14, side, 4 * dim));
    }
}
