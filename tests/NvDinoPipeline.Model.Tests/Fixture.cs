using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

/// <summary>Reference data written by Fixtures/make_fixtures.py.</summary>
internal static class Fixture
{
    public const double Tolerance = 1e-4;

    public static string PathOf(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    /// <summary>The config make_fixtures.py used for a variant.</summary>
    public static BackboneConfig ConfigOf(string variant) => variant switch
    {
        "vit_mlp_noreg" => Tiny(28),
        "vit_swiglu_reg4" => Tiny(42) with { FfnLayer = FfnLayer.SwiGlu, NumRegisterTokens = 4 },
        "vit_mlp_reg4_nols" => Tiny(28) with { NumRegisterTokens = 4, LayerScaleInit = null },
        _ => throw new ArgumentOutOfRangeException(nameof(variant), variant, "No such fixture variant."),
    };

    public static BackboneConfig Tiny(int imgSize) =>
        new() { EmbedDim = 16, Depth = 2, NumHeads = 2, PatchSize = 14, ImgSize = imgSize };

    public static Dictionary<string, Tensor> Inputs() => SafeTensors.Load(PathOf("inputs.safetensors"));

    public static Dictionary<string, Tensor> Expected(string variant) => SafeTensors.Load(PathOf($"{variant}.expected.safetensors"));

    public static VisionTransformer LoadedModel(string variant, string extension = "safetensors")
    {
        var model = new VisionTransformer(ConfigOf(variant));
        model.eval();
        var report = BackboneWeights.Load(model, PathOf($"{variant}.{extension}"), new LoadOptions { Strict = true });
        Assert.True(report.IsComplete);
        return model;
    }

    public static double MaxAbsDiff(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var diff = (actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs().max();
        return diff.item<double>();
    }

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance = Tolerance)
    {
        var error = MaxAbsDiff(actual, expected);
        Assert.True(error <= tolerance, $"max abs error {error:g3} exceeds {tolerance:g3}");
    }

    public static void DisposeAll(Dictionary<string, Tensor> tensors)
    {
        foreach (var tensor in tensors.Values)
            tensor.Dispose();
    }
}
