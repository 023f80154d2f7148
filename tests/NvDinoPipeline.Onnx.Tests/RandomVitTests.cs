using NvDinoPipeline.Onnx;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Onnx.Tests;

/// <summary>The shared random-weight ViT gives every key the graph builder reads, in the shapes it reads them.</summary>
public sealed class RandomVitTests
{
    [Theory]
    [InlineData(VitFfnKind.Mlp, 0)]
    [InlineData(VitFfnKind.SwiGlu, 0)]
    [InlineData(VitFfnKind.SwiGlu, 4)]
    public void Random_weights_describe_the_configured_backbone_and_build_a_graph(VitFfnKind ffn, int registers)
    {
        var config = new VitGraphConfig { EmbedDim = 48, Depth = 2, NumHeads = 3, PatchSize = 8, ImageSize = 32, Ffn = ffn, NumRegisterTokens = registers };

        var weights = RandomVit.Weights(config, seed: 3);
        var read = VitGraphConfig.FromWeights(weights, numHeads: 3);
        var model = VitOnnxBuilder.Build(config, weights, new VitExportOptions());

        Assert.Equal(ffn, read.Ffn);
        Assert.Equal(registers, read.NumRegisterTokens);
        Assert.Equal((config.EmbedDim, config.Depth, config.PatchSize), (read.EmbedDim, read.Depth, read.PatchSize));
        // DINOv2's SwiGLUFFNFused: hidden 4·48·2/3 = 128, already a multiple of 8.
        var hidden = ffn == VitFfnKind.Mlp ? 4 * 48 : 128;
        Assert.Equal(hidden, weights[ffn == VitFfnKind.Mlp ? "blocks.0.mlp.fc1.weight" : "blocks.0.mlp.w3.weight"].Shape[ffn == VitFfnKind.Mlp ? 0 : 1]);
        using var folder = new TempDirectory("nvdino-random-vit");
        var path = folder.Combine("model.onnx");
        OnnxModelWriter.Save(model, path);
        var input = Enumerable.Range(0, 2 * 3 * 32 * 32).Select(i => MathF.Sin(i * 0.37f)).ToArray();
        var embedding = OnnxParity.Run(path, input, [2, 3, 32, 32])[0];
        Assert.Equal(2 * 48, embedding.Data.Length);
        Assert.All(embedding.Data, value => Assert.True(float.IsFinite(value)));
    }
}
