using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Specs;

namespace NvDinoPipeline.Export.Tests;

/// <summary>The spec keys of TAO's <c>nvdinov2 export</c>, as the worker reads them.</summary>
public sealed class ExportSettingsTests
{
    private static readonly Lazy<SpecLoader> Specs = new(SpecLoader.CreateDefault);

    [Fact]
    public void Template_defaults_export_the_latest_teacher_at_224_with_a_dynamic_batch_and_opset_17()
    {
        var settings = ExportSettings.Read(Specs.Value.Defaults, PipelineStage.Training);

        Assert.Equal(CheckpointSelectionKind.Latest, settings.Checkpoint.Kind);
        Assert.Null(settings.OnnxFile);
        Assert.Equal(17, settings.Opset);
        Assert.True(settings.DynamicBatch);
        Assert.Equal((224, 224), (settings.InputHeight, settings.InputWidth));
        Assert.False(settings.DynamicHeightWidth);
        Assert.False(settings.IncludePatchTokens);
        Assert.Equal("model.backbone.teacher_type", settings.ExpectedBackboneKey);
        Assert.Equal((1024, 24, 16, FfnLayer.SwiGlu), (settings.ExpectedBackbone!.EmbedDim, settings.ExpectedBackbone.Depth,
            settings.ExpectedBackbone.NumHeads, settings.ExpectedBackbone.FfnLayer));
    }

    [Fact]
    public void After_distillation_the_student_type_is_the_expected_architecture()
    {
        var spec = Specs.Value.Resolve([], ["model.distill.enable=true", "model.backbone.student_type=vit_s"]);

        var settings = ExportSettings.Read(spec, PipelineStage.Distillation);

        Assert.Equal("model.backbone.student_type", settings.ExpectedBackboneKey);
        Assert.Equal(384, settings.ExpectedBackbone!.EmbedDim);
    }

    [Theory]
    [InlineData("latest", CheckpointSelectionKind.Latest, null, null)]
    [InlineData("best", CheckpointSelectionKind.Best, null, null)]
    [InlineData("12", CheckpointSelectionKind.Epoch, 12, null)]
    [InlineData("checkpoints/epoch_003.ckpt", CheckpointSelectionKind.Path, null, "checkpoints/epoch_003.ckpt")]
    [InlineData("s3://models/teacher.safetensors", CheckpointSelectionKind.Path, null, "s3://models/teacher.safetensors")]
    public void Checkpoint_selector_reads_as_tao_writes_it(string value, CheckpointSelectionKind kind, int? epoch, string? path)
    {
        var selection = CheckpointSelection.Parse(ExportSettings.CheckpointKey, value);

        Assert.Equal(new CheckpointSelection("export.checkpoint", kind, epoch, path), selection);
    }

    [Fact]
    public void A_spec_without_the_export_section_is_rejected_naming_the_key()
    {
        var error = Assert.Throws<StageInputException>(() => ExportSettings.Read(ResolvedSpec.FromJson("{}"), PipelineStage.Training));

        Assert.Contains("export.checkpoint", error.Message);
    }

    [Fact]
    public void Model_and_metadata_go_to_the_job_folder_by_default()
    {
        var job = new Uri("file:///artifacts/p/j/");

        var (onnx, metadata) = ExportRunner.OutputLocations(job, Settings(null));

        Assert.Equal("file:///artifacts/p/j/model.onnx", onnx.AbsoluteUri);
        Assert.Equal("file:///artifacts/p/j/model.json", metadata.AbsoluteUri);
    }

    [Fact]
    public void Onnx_file_names_where_inside_the_job_folder_the_model_and_its_metadata_go()
    {
        var locations = ExportRunner.OutputLocations(new Uri("file:///artifacts/p/j/"), Settings("deploy/nvdino_vitl.onnx"));

        Assert.Equal(("file:///artifacts/p/j/deploy/nvdino_vitl.onnx", "file:///artifacts/p/j/deploy/nvdino_vitl.json"),
            (locations.Onnx.AbsoluteUri, locations.Metadata.AbsoluteUri));
    }

    [Theory]
    [InlineData("model.pt", "must name a .onnx file")]
    [InlineData("../elsewhere/model.onnx", "is not a path inside the job's folder")]
    [InlineData("/srv/models/vitl.onnx", "is not a path inside the job's folder")]
    [InlineData("s3://models/vitl.onnx", "is not a path inside the job's folder")]
    [InlineData("file:///artifacts/victim/job/model.ort.onnx", "is not a path inside the job's folder")]
    public void Onnx_file_that_is_no_onnx_file_inside_the_job_is_rejected(string onnxFile, string rule)
    {
        var error = Assert.Throws<StageInputException>(() => ExportRunner.OutputLocations(new Uri("file:///artifacts/p/j/"), Settings(onnxFile)));

        Assert.Contains($"export.onnx_file '{onnxFile}'", error.Message);
        Assert.Contains(rule, error.Message);
    }

    [Fact]
    public async Task Input_size_that_is_no_multiple_of_the_checkpoints_patch_fails_naming_the_key()
    {
        using var bed = new ExportTestBed();
        var config = TestBackbones.Pico(imgSize: 32, patchSize: 16);
        using var model = TestBackbones.Create(config, seed: 1);
        await bed.StoreBackboneAsync(model);
        var spec = ExportTestBed.Spec(config).ToJson().Replace("\"input_height\":32", "\"input_height\":40", StringComparison.Ordinal);

        var error = await bed.FailsAsync(bed.Command(spec));

        Assert.Contains("export.input_height 40 is not a multiple of the backbone's patch size 16", error.Message);
    }

    private static ExportSettings Settings(string? onnxFile) => new()
    {
        Checkpoint = new CheckpointSelection(ExportSettings.CheckpointKey, CheckpointSelectionKind.Latest),
        OnnxFile = onnxFile,
        InputHeight = 224,
        InputWidth = 224,
    };
}
