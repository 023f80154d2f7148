using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Export.Tests.Support;

/// <summary>Tiny backbones with weights far from their initialisation, so every layer moves the output.</summary>
internal static class TestBackbones
{
    /// <summary>vit_pico (64 wide, 2 blocks, 2 heads) with the given variant settings.</summary>
    public static BackboneConfig Pico(int imgSize = 28, FfnLayer ffn = FfnLayer.Mlp, int registers = 0, bool layerScale = true, int patchSize = 14) =>
        BackboneConfig.FromName("vit_pico", patchSize, imgSize, ffn, registers, layerScale ? 1e-5 : null);

    /// <summary>
    /// A backbone whose parameters are drawn from <paramref name="seed"/>: fan-in scaled linear weights, LayerScale near
    /// 0.5 (the 1e-5 initialisation would hide the blocks), and position embeddings large enough that interpolating
    /// them wrongly would show.
    /// </summary>
    public static VisionTransformer Create(BackboneConfig config, int seed)
    {
        var model = new VisionTransformer(config);
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            var noise = randn(parameter.shape, generator: generator);
            Tensor value = name switch
            {
                _ when name.EndsWith(".gamma", StringComparison.Ordinal) => 0.5f + 0.1f * noise,
                _ when name.EndsWith("norm.weight", StringComparison.Ordinal) || name.EndsWith("norm1.weight", StringComparison.Ordinal)
                    || name.EndsWith("norm2.weight", StringComparison.Ordinal) => 1f + 0.1f * noise,
                _ when name.EndsWith(".bias", StringComparison.Ordinal) => 0.05f * noise,
                "pos_embed" or "cls_token" or "register_tokens" or "mask_token" => 0.5f * noise,
                _ => noise / MathF.Sqrt(parameter.shape.Skip(1).Aggregate(1L, (a, d) => a * d)),
            };
            parameter.copy_(value);
        }
        model.eval();
        return model;
    }

    /// <summary>Normalised-image-like input [batch, 3, height, width].</summary>
    public static float[] Input(int batch, int height, int width, int seed)
    {
        var random = new Random(seed);
        var values = new float[batch * 3 * height * width];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (float)(random.NextDouble() * 4 - 2);
        }
        return values;
    }

    /// <summary>CLS embedding (and patch tokens) of the TorchSharp model.</summary>
    public static (float[] Cls, float[] Patches) Run(VisionTransformer model, float[] input, long[] shape)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var output = model.forward_features(tensor(input, shape));
        return (output.ClsToken.contiguous().data<float>().ToArray(), output.PatchTokens.contiguous().data<float>().ToArray());
    }

    /// <summary>ONNX Runtime on the exported model against <paramref name="model"/>, at batch 2 of the exported input size.</summary>
    public static NvDinoPipeline.Onnx.ParityReport CompareExport(VisionTransformer model, Uri onnxModel, int height, int width)
    {
        long[] shape = [2, 3, height, width];
        var input = Input(2, height, width, seed: 9);
        var expected = Run(model, input, shape);
        using var runner = new NvDinoPipeline.Onnx.OnnxModelRunner(onnxModel.LocalPath, intraOpThreads: 1);
        var actual = runner.Run(input, shape);
        return NvDinoPipeline.Onnx.OnnxParity.Compare(expected.Cls, actual[0].Data, model.EmbedDim);
    }
}
