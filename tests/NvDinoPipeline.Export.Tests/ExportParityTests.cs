using NvDinoPipeline.Testing;
using Xunit.Abstractions;
using System.Security.Cryptography;
using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;

namespace NvDinoPipeline.Export.Tests;

/// <summary>
/// Every backbone variant the trainer builds, saved as training saves it, exported by the runner, then checked from the
/// outside: ONNX Runtime on inputs the runner never saw against the TorchSharp model, the reference ONNX checker, and
/// the metadata the later stages read.
/// </summary>
public sealed class ExportParityTests(ITestOutputHelper output)
{
    public sealed record Variant(string Name, BackboneConfig Config, string[] Overrides)
    {
        public override string ToString() => Name;
    }

    public static TheoryData<Variant> Variants =>
    [
        new("mlp_dynamic_batch", TestBackbones.Pico(imgSize: 28), []),
        new("mlp_registers_no_layerscale_dynamic_hw", TestBackbones.Pico(imgSize: 42, registers: 2, layerScale: false),
            ["export.dynamic_hw=true"]),
        new("swiglu_registers_dynamic_hw_patch_tokens_other_size", TestBackbones.Pico(imgSize: 42, ffn: FfnLayer.SwiGlu, registers: 4),
            ["export.dynamic_hw=true", "export.include_patch_tokens=true", "export.input_height=28", "export.input_width=28"]),
        new("swiglu_fixed_batch_interpolated_size", TestBackbones.Pico(imgSize: 28, ffn: FfnLayer.SwiGlu),
            ["export.batch_size=2", "export.input_height=42", "export.input_width=56", "export.opset_version=18"]),
        new("mlp_patch16_registers_dynamic_batch_and_hw", TestBackbones.Pico(imgSize: 32, registers: 1, patchSize: 16),
            ["export.dynamic_hw=true", "export.include_patch_tokens=true"]),
        // Small patches for small images: 28 px at patch 4 is a 7×7 grid, interpolated to 9×5 at 36×20.
        new("mlp_patch4_small_image_dynamic_hw_other_size", TestBackbones.Pico(imgSize: 28, patchSize: 4),
            ["export.dynamic_hw=true", "export.include_patch_tokens=true", "export.input_height=36", "export.input_width=20"]),
        new("swiglu_patch7_registers_fixed_batch", TestBackbones.Pico(imgSize: 28, ffn: FfnLayer.SwiGlu, registers: 2, patchSize: 7),
            ["export.batch_size=3"]),
    ];

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Exported_model_matches_the_trained_backbone_and_passes_the_onnx_checker(Variant variant)
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(variant.Config, seed: 11);
        await bed.StoreBackboneAsync(model);
        var spec = ExportTestBed.Spec(variant.Config, variant.Overrides);
        var settings = ExportSettings.Read(spec, Contracts.PipelineStage.Training);

        var result = await bed.RunAsync(bed.Command(spec));

        var exported = result.Completed;
        Assert.InRange(exported.MaxAbsError, 0, 1e-4);
        Assert.InRange(exported.MinCosine, 0.99999, 1.0 + 1e-9);
        Assert.Equal(exported.OnnxModelUri, result.Artifacts[ExportRunner.OnnxModelArtifact]);
        Assert.Equal(exported.MetadataUri, result.Artifacts[ExportRunner.MetadataArtifact]);
        Assert.Equal("model.onnx", Path.GetFileName(exported.OnnxModelUri.LocalPath));
        Assert.Equal("model.json", Path.GetFileName(exported.MetadataUri.LocalPath));
        Assert.Equal(0, result.Metrics["onnx_runtime_warnings"]);

        var onnxPath = exported.OnnxModelUri.LocalPath;
        OnnxChecker.AssertValid(onnxPath);
        using var runner = new OnnxModelRunner(onnxPath, intraOpThreads: 1);
        Assert.NotNull(runner.CreationWarnings);
        Assert.Empty(runner.CreationWarnings);
        string[] expectedOutputs = settings.IncludePatchTokens ? ["output", "patch_tokens"] : ["output"];
        Assert.Equal(expectedOutputs, runner.OutputNames);

        // Inputs the runner did not check: another batch and, for a dynamic graph, another non-square size.
        var batch = settings.DynamicBatch ? 3 : settings.BatchSize;
        var patch = variant.Config.PatchSize;
        var (height, width) = settings.DynamicHeightWidth ? (settings.InputHeight + patch, settings.InputWidth + 3 * patch) : (settings.InputHeight, settings.InputWidth);
        long[] shape = [batch, 3, height, width];
        var input = TestBackbones.Input(batch, height, width, seed: 5);
        var expected = TestBackbones.Run(model, input, shape);
        var actual = runner.Run(input, shape);
        var cls = OnnxParity.Compare(expected.Cls, actual[0].Data, variant.Config.EmbedDim);
        Assert.True(cls.IsWithin(1e-4, 0.99999), $"CLS embedding at {height}×{width}, batch {batch}: {cls}");
        Assert.Equal([batch, variant.Config.EmbedDim], actual[0].Shape);
        if (settings.IncludePatchTokens)
        {
            var patches = OnnxParity.Compare(expected.Patches, actual[1].Data, variant.Config.EmbedDim);
            Assert.True(patches.IsWithin(1e-4, 0.99999), $"patch tokens at {height}×{width}, batch {batch}: {patches}");
            Assert.Equal([batch, height / patch * (width / patch), variant.Config.EmbedDim], actual[1].Shape);
        }

        var metadata = ExportTestBed.Metadata(exported);
        output.WriteLine($"{variant}: runner checks {string.Join("; ", metadata.Parity!.Checks)}; outside check {cls}");
        Assert.Equal("model.onnx", metadata.OnnxFile);
        Assert.Equal(settings.Opset, metadata.Opset);
        Assert.Equal(settings.DynamicBatch, metadata.DynamicBatch);
        Assert.Equal(settings.DynamicHeightWidth, metadata.DynamicHeightWidth);
        Assert.Equal("input", metadata.Input.Name);
        long hw(int side) => settings.DynamicHeightWidth ? -1 : side;
        Assert.Equal([settings.DynamicBatch ? -1 : settings.BatchSize, 3, hw(settings.InputHeight), hw(settings.InputWidth)], metadata.Input.Shape);
        Assert.Equal(expectedOutputs, metadata.Outputs.Select(o => o.Name));
        Assert.Equal(variant.Config.EmbedDim, metadata.EmbeddingDimension);
        Assert.Equal((settings.InputHeight, settings.InputWidth), (metadata.Preprocessing.Height, metadata.Preprocessing.Width));
        Assert.Equal(("vit_pico", variant.Config.PatchSize, variant.Config.NumRegisterTokens, variant.Config.ImgSize),
            (metadata.Backbone.Type, metadata.Backbone.PatchSize, metadata.Backbone.NumRegisterTokens, metadata.Backbone.TrainedImageSize));
        Assert.Equal(bed.BackboneUri.AbsoluteUri, metadata.Source!.Uri);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(bed.BackboneUri.LocalPath))), metadata.Source.Sha256);
        Assert.Equal("latest", metadata.Source.Selection);

        var parity = metadata.Parity!;
        Assert.Equal(exported.MaxAbsError, parity.MaxAbsError);
        Assert.Equal(exported.MinCosine, parity.MinCosine);
        var checkedBatches = parity.Checks.Where(c => (c.Height, c.Width) == (settings.InputHeight, settings.InputWidth)).Select(c => c.Batch);
        Assert.Equal(settings.DynamicBatch ? [1, 4] : [settings.BatchSize], checkedBatches);
        Assert.Equal(settings.DynamicHeightWidth, parity.Checks.Any(c => (c.Height, c.Width) != (settings.InputHeight, settings.InputWidth)));
    }

    [Fact]
    public async Task Model_over_the_external_data_threshold_is_published_with_its_data_file_beside_it()
    {
        using var bed = new ExportTestBed();
        var config = TestBackbones.Pico(imgSize: 28, ffn: FfnLayer.SwiGlu, registers: 4);
        using var model = TestBackbones.Create(config, seed: 21);
        await bed.StoreBackboneAsync(model);
        // vit_g's 4.5 GB take this path; a tiny threshold sends the tiny model's tensors there too.
        bed.Options.ExternalDataThresholdBytes = 1024;

        var result = await bed.RunAsync(bed.Command(ExportTestBed.Spec(config, "export.dynamic_hw=true")));

        var exported = result.Completed;
        var data = result.Artifacts[ExportRunner.ExternalDataArtifact];
        Assert.Equal(exported.OnnxModelUri.AbsoluteUri + ".data", data.AbsoluteUri);
        Assert.True(new FileInfo(data.LocalPath).Length > new FileInfo(exported.OnnxModelUri.LocalPath).Length,
            "the weights should be in the data file, not in model.onnx");
        Assert.InRange(exported.MaxAbsError, 0, 1e-4);
        OnnxChecker.AssertValid(exported.OnnxModelUri.LocalPath);
        var parity = TestBackbones.CompareExport(model, exported.OnnxModelUri, 42, 28);
        Assert.True(parity.IsWithin(1e-4, 0.99999), parity.ToString());
    }
}
