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
    /// <param name="patchSize">8 (a 4×4 grid); 16 is a patch size the product's own backbones have.</param>
    public static TinyVit Create(string folder, int batchSize = -1, int seed = 7, int patchSize = 8)
    {
        Directory.CreateDirectory(folder);
        var config = new VitGraphConfig { EmbedDim = Dimension, Depth = 2, NumHeads = 4, PatchSize = patchSize, ImageSize = Side };
        var weights = RandomVit.Weights(config, seed, new RandomVit.Scales
        {
            ClsToken = 0.5f,
            PosEmbed = 0.2f,
            PatchWeight = 0.1f,
            Bias = 0.1f,
            Linear = 0.3f,
            Fc2 = 0.2f,
            LayerScale = 0.2f,
            LayerScaleMean = 0.5f,
        });
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
            Backbone = new BackboneDescription { Type = "vit_test", PatchSize = patchSize, EmbedDim = Dimension, Depth = 2, NumHeads = 4, TrainedImageSize = Side },
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
