using NvDinoPipeline.Testing;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Onnx.Tests.Support;
using Xunit.Abstractions;

namespace NvDinoPipeline.Onnx.Tests;

public sealed class VitOnnxBuilderTests(ITestOutputHelper log) : IDisposable
{
    private const double MaxAbsError = 1e-4;
    private const double MinCosine = 0.99999;

    private static readonly string[] AllInputs = ["trained_b1", "trained_b3", "wide_b2", "skewed_b1", "thin_b1", "half_trained_b1"];
    private readonly TempFolder _folder = new();
    private readonly VitFixtures _fixtures = VitFixtures.Instance;

    public static TheoryData<string, double> ModelsAndOffsets()
    {
        var data = new TheoryData<string, double>();
        foreach (var model in VitFixtures.ModelNames)
        {
            data.Add(model, 0.0);
            data.Add(model, 0.1);
        }

        return data;
    }

    public static TheoryData<string> Models() => new(VitFixtures.ModelNames);

    [Theory]
    [MemberData(nameof(ModelsAndOffsets))]
    public void Dynamic_height_and_width_export_matches_pytorch_at_every_resolution(string model, double offset)
    {
        var path = Export(model, offset, new VitExportOptions { DynamicHeightWidth = true, IncludePatchTokens = true });

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        Assert.Empty(runner.CreationWarnings!);
        foreach (var input in AllInputs)
        {
            AssertMatchesReference(runner, _fixtures.Case(model, input, offset));
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Trained_resolution_export_with_dynamic_batch_matches_pytorch_at_batch_1_and_3(string model)
    {
        var path = Export(model, 0.1, new VitExportOptions { IncludePatchTokens = true });

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        Assert.Empty(runner.CreationWarnings!);
        AssertMatchesReference(runner, _fixtures.Case(model, "trained_b1", 0.1));
        AssertMatchesReference(runner, _fixtures.Case(model, "trained_b3", 0.1));
        Assert.DoesNotContain(OnnxModelReader.Load(path).Graph!.Node, n => n.OpType == "Resize");
    }

    [Theory]
    [MemberData(nameof(ModelsAndOffsets))]
    public void Static_export_at_another_resolution_interpolates_the_position_embedding_like_pytorch(string model, double offset)
    {
        var path = Export(model, offset, new VitExportOptions { Height = 24, Width = 20, BatchSize = 2, IncludePatchTokens = true });

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        Assert.Empty(runner.CreationWarnings!);
        AssertMatchesReference(runner, _fixtures.Case(model, "wide_b2", offset));
    }

    [Theory]
    [InlineData(18, 8)]
    [InlineData(20, 9)]
    [InlineData(21, 10)]
    public void Later_opsets_declare_their_ir_version_and_give_the_same_embeddings(int opset, long irVersion)
    {
        var path = Export("swiglu_registers_layerscale", 0.1, new VitExportOptions { Opset = opset, DynamicHeightWidth = true });

        var model = OnnxModelReader.Load(path);
        Assert.Equal(opset, model.OpsetImport.Single().Version);
        Assert.Equal(irVersion, model.IrVersion);
        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        Assert.Empty(runner.CreationWarnings!);
        AssertMatchesReference(runner, _fixtures.Case("swiglu_registers_layerscale", "wide_b2", 0.1));
    }

    [Fact]
    public void Every_export_variant_passes_the_onnx_checker_with_strict_shape_inference()
    {
        VitExportOptions[] variants =
        [
            new() { IncludePatchTokens = true },
            new() { DynamicHeightWidth = true, IncludePatchTokens = true },
            new() { Height = 24, Width = 20, BatchSize = 2, IncludePatchTokens = true },
            new() { Height = 8, Width = 32 },
        ];
        var paths = new List<string>();
        foreach (var model in VitFixtures.ModelNames)
        {
            foreach (var offset in (double[])[0.0, 0.1])
            {
                for (var v = 0; v < variants.Length; v++)
                {
                    var path = _folder.File($"check_{model}_{offset}_{v}.onnx");
                    OnnxModelWriter.Save(Build(model, offset, variants[v]), path);
                    paths.Add(path);
                }
            }
        }

        OnnxChecker.AssertValid([.. paths]);
    }

    [Fact]
    public void Declares_tao_input_and_output_names_with_symbolic_or_fixed_dims()
    {
        var dynamicModel = Build("mlp_registers", 0.1, new VitExportOptions { DynamicHeightWidth = true, IncludePatchTokens = true });
        var fixedModel = Build("mlp_registers", 0.1, new VitExportOptions { BatchSize = 4, Height = 8, Width = 12, IncludePatchTokens = true });

        Assert.Equal(8, dynamicModel.IrVersion);
        Assert.Equal(17, Assert.Single(dynamicModel.OpsetImport).Version);
        Assert.Equal(["batch", "3", "height", "width"], Dims(dynamicModel.Graph!.Input.Single(i => i.Name == "input")));
        Assert.Equal(["batch", "24"], Dims(dynamicModel.Graph.Output.Single(o => o.Name == "output")));
        Assert.Equal(["batch", "num_patches", "24"], Dims(dynamicModel.Graph.Output.Single(o => o.Name == "patch_tokens")));
        Assert.Equal(["4", "3", "8", "12"], Dims(fixedModel.Graph!.Input.Single()));
        Assert.Equal(["4", "6", "24"], Dims(fixedModel.Graph.Output.Single(o => o.Name == "patch_tokens")));
    }

    [Fact]
    public void Without_patch_tokens_the_only_output_is_the_cls_embedding()
    {
        var model = Build("swiglu", 0.1, new VitExportOptions());

        var output = Assert.Single(model.Graph!.Output);
        Assert.Equal("output", output.Name);
    }

    [Fact]
    public void Names_nodes_after_the_block_and_module_they_compute()
    {
        var model = Build("swiglu_registers_layerscale", 0.1, new VitExportOptions());

        var names = model.Graph!.Node.Select(n => n.Name).ToHashSet();
        Assert.Contains("/blocks.1/attn/Softmax", names);
        Assert.Contains("/blocks.0/norm2/LayerNormalization", names);
        Assert.Contains("/blocks.1/ls2/Mul", names);
        Assert.Contains("/norm/LayerNormalization", names);
    }

    [Fact]
    public void Records_the_architecture_in_model_metadata()
    {
        var model = Build("mlp_registers", 0.0, new VitExportOptions());

        var metadata = model.MetadataProps.ToDictionary(p => p.Key!, p => p.Value);
        Assert.Equal("4", metadata["patch_size"]);
        Assert.Equal("16", metadata["image_size"]);
        Assert.Equal("2", metadata["num_register_tokens"]);
        Assert.Equal("0", metadata["interpolate_offset"]);
    }

    [Fact]
    public void Reads_the_architecture_from_state_dict_shapes()
    {
        var config = VitGraphConfig.FromWeights(_fixtures.Models["swiglu_registers_layerscale"].Weights, numHeads: 3);

        Assert.Equal(_fixtures.Config("swiglu_registers_layerscale", 0.1), config);
    }

    [Fact]
    public void Rejects_a_missing_weight_and_names_it()
    {
        var weights = Weights("mlp_layerscale");
        weights.Remove("blocks.1.attn.proj.weight");

        var error = Assert.Throws<ArgumentException>(() => VitOnnxBuilder.Build(_fixtures.Config("mlp_layerscale", 0.1), weights, new VitExportOptions()));
        Assert.Contains("'blocks.1.attn.proj.weight' is missing", error.Message);
    }

    [Fact]
    public void Rejects_a_weight_of_the_wrong_shape_and_names_both_shapes()
    {
        var weights = Weights("mlp_layerscale");
        weights["blocks.0.norm2.weight"] = new NamedWeight(new float[25], [25]);

        var error = Assert.Throws<ArgumentException>(() => VitOnnxBuilder.Build(_fixtures.Config("mlp_layerscale", 0.1), weights, new VitExportOptions()));
        Assert.Contains("'blocks.0.norm2.weight' has shape [25]; expected [24]", error.Message);
    }

    [Fact]
    public void Rejects_keys_it_would_otherwise_silently_drop()
    {
        var weights = Weights("mlp_layerscale");
        weights["blocks.0.ls1.weight"] = weights["blocks.0.ls1.gamma"];
        weights["blocks.2.norm1.weight"] = weights["blocks.0.norm1.weight"];

        var error = Assert.Throws<ArgumentException>(() => VitOnnxBuilder.Build(_fixtures.Config("mlp_layerscale", 0.1), weights, new VitExportOptions()));
        Assert.Contains("blocks.0.ls1.weight", error.Message);
        Assert.Contains("blocks.2.norm1.weight", error.Message);
    }

    [Fact]
    public void Rejects_swiglu_weights_for_an_mlp_config()
    {
        var config = _fixtures.Config("swiglu", 0.1) with { Ffn = VitFfnKind.Mlp };

        var error = Assert.Throws<ArgumentException>(() => VitOnnxBuilder.Build(config, Weights("swiglu"), new VitExportOptions()));
        Assert.Contains("blocks.0.mlp.w12.weight", error.Message);
    }

    [Fact]
    public void Refuses_antialiased_position_interpolation_it_cannot_reproduce()
    {
        var config = _fixtures.Config("swiglu", 0.1) with { InterpolateAntialias = true };

        var error = Assert.Throws<NotSupportedException>(() => VitOnnxBuilder.Build(config, Weights("swiglu"), new VitExportOptions()));
        Assert.Contains("InterpolateAntialias", error.Message);
    }

    [Theory]
    [InlineData(16, null, null, "Opset 16")]
    [InlineData(17, 18, null, "Height 18 must be a positive multiple of the patch size 4")]
    [InlineData(17, null, 0, "Width 0 must be")]
    [InlineData(17, 16, 16, "cannot be combined with DynamicHeightWidth", true)]
    public void Rejects_export_options_it_cannot_honour(int opset, int? height, int? width, string message, bool dynamicHeightWidth = false)
    {
        var options = new VitExportOptions { Opset = opset, Height = height, Width = width, DynamicHeightWidth = dynamicHeightWidth };

        var error = Assert.Throws<ArgumentException>(() => VitOnnxBuilder.Build(_fixtures.Config("swiglu", 0.1), Weights("swiglu"), options));
        Assert.Contains(message, error.Message);
    }

    public void Dispose() => _folder.Dispose();

    private Dictionary<string, NamedWeight> Weights(string model) => new(_fixtures.Models[model].Weights);

    private ModelProto Build(string model, double offset, VitExportOptions options) =>
        VitOnnxBuilder.Build(_fixtures.Config(model, offset), _fixtures.Models[model].Weights, options);

    private string Export(string model, double offset, VitExportOptions options)
    {
        var path = _folder.File($"{model}_{offset}.onnx");
        OnnxModelWriter.Save(Build(model, offset, options), path);
        return path;
    }

    private void AssertMatchesReference(OnnxModelRunner runner, FixtureCase expected)
    {
        var input = _fixtures.Inputs[expected.Input];
        var outputs = runner.Run(input.Data, input.Shape).ToDictionary(o => o.Name);
        var d = _fixtures.EmbedDim;

        var cls = outputs["output"];
        Assert.Equal(expected.Output.Shape, cls.Shape);
        var clsParity = OnnxParity.Compare(expected.Output.Data, cls.Data, d);
        log.WriteLine($"{expected.Model} {expected.Input} offset {expected.InterpolateOffset} CLS: {clsParity}");
        Assert.True(clsParity.IsWithin(MaxAbsError, MinCosine), $"{expected.Model} {expected.Input} offset {expected.InterpolateOffset} CLS: {clsParity}");

        if (outputs.TryGetValue("patch_tokens", out var patches))
        {
            Assert.Equal(expected.PatchTokens.Shape, patches.Shape);
            var patchParity = OnnxParity.Compare(expected.PatchTokens.Data, patches.Data, d);
            log.WriteLine($"{expected.Model} {expected.Input} offset {expected.InterpolateOffset} patches: {patchParity}");
            Assert.True(patchParity.IsWithin(MaxAbsError, MinCosine), $"{expected.Model} {expected.Input} offset {expected.InterpolateOffset} patches: {patchParity}");
        }
    }

    private static string[] Dims(ValueInfoProto value) =>
        value.Type!.TensorType!.Shape!.Dim.Select(d => d.DimParam ?? d.DimValue!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}
