using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Storage;
using static TorchSharp.torch;

namespace NvDinoPipeline.Export.Tests;

/// <summary>What a user sees when the checkpoint cannot be exported: the job fails, naming the file and what is wrong.</summary>
public sealed class CheckpointFailureTests
{
    private static readonly BackboneConfig Pico = TestBackbones.Pico(imgSize: 28);

    [Fact]
    public async Task Missing_backbone_fails_naming_the_file()
    {
        using var bed = new ExportTestBed();

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico)));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "does not exist");
        Mentions(error, "export.checkpoint = latest");
    }

    [Fact]
    public async Task Truncated_backbone_fails_saying_where_it_ends()
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(Pico, seed: 1);
        await bed.StoreBackboneAsync(model);
        Truncate(bed.BackboneUri.LocalPath);

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico)));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "truncated or corrupt");
        Mentions(error, "outside the");
        Mentions(error, "data section");
    }

    [Fact]
    public async Task A_file_that_is_no_checkpoint_fails_naming_it()
    {
        using var bed = new ExportTestBed();
        var local = bed.Temp.Combine("notes.txt");
        await File.WriteAllTextAsync(local, "these are not weights");
        await bed.Store.PutFileAsync(bed.BackboneUri, local, CancellationToken.None);

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico)));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "truncated or corrupt");
    }

    [Fact]
    public async Task Backbone_of_another_size_than_the_spec_fails_with_both_architectures()
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(Pico with { EmbedDim = 32 }, seed: 1);
        await bed.StoreBackboneAsync(model);

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico)));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "wrong architecture");
        Mentions(error, "32 wide");
        Mentions(error, "model.backbone.teacher_type is vit_pico/14 (64 wide");
    }

    [Fact]
    public async Task Weights_without_a_config_that_do_not_fit_the_spec_fail_naming_the_tensor()
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(Pico with { EmbedDim = 32 }, seed: 1);
        await StoreWithoutConfigAsync(bed, model);

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico)));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "wrong architecture for a vit_pico/14");
        Mentions(error, "tensor 'mask_token' has shape [1, 32] but the model expects [1, 64]");
    }

    [Fact]
    public async Task Mlp_weights_where_the_spec_says_swiglu_fail_listing_missing_and_unexpected_tensors()
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(Pico, seed: 1);
        await StoreWithoutConfigAsync(bed, model);

        var error = await bed.FailsAsync(bed.Command(ExportTestBed.Spec(Pico with { FfnLayer = FfnLayer.SwiGlu })));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "does not hold a vit_pico/14 (64 wide, 2 blocks, 2 heads, SwiGLU");
        Mentions(error, "missing tensor(s) [blocks.0.mlp.w12.weight");
        Mentions(error, "unexpected tensor(s) [blocks.0.mlp.fc1.bias");
    }

    [Fact]
    public async Task Export_that_misses_the_parity_bounds_fails_with_every_figure_and_publishes_nothing()
    {
        using var bed = new ExportTestBed();
        using var model = TestBackbones.Create(Pico, seed: 1);
        await bed.StoreBackboneAsync(model);
        bed.Options.MaxAbsError = 0;
        bed.Options.MinCosine = 1;
        var command = bed.Command(ExportTestBed.Spec(Pico));

        var error = await Assert.ThrowsAsync<ExportParityException>(() => bed.RunAsync(command));

        Mentions(error, $"'{bed.BackboneUri}'");
        Mentions(error, "batch 1 at 28×28: max |Δ|");
        Mentions(error, "batch 4 at 28×28: max |Δ|");
        Mentions(error, "(FAILED)");
        Assert.Equal(2, error.Report.Checks.Count);
        Assert.InRange(error.Report.MaxAbsError, 1e-9, 1e-4);
        Assert.Empty(await bed.ListAsync(command.OutputUri));
        Assert.False(Directory.Exists(bed.Temp.Combine("scratch", command.JobId.ToString(), "export")), "the rejected model was left in scratch");
    }

    private static async Task StoreWithoutConfigAsync(ExportTestBed bed, VisionTransformer model)
    {
        var local = bed.Temp.Combine("no-config.safetensors");
        SafeTensors.Save(local, model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        await bed.Store.PutFileAsync(bed.BackboneUri, local, CancellationToken.None);
    }

    private static void Mentions(Exception error, string text) =>
        Assert.True(error.Message.Contains(text, StringComparison.Ordinal), $"'{text}' is not in: {error.Message}");

    private static void Truncate(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(file.Length / 2);
    }
}
