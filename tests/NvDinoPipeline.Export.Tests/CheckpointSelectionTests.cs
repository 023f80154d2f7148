using NvDinoPipeline.Contracts;
using NvDinoPipeline.Export.Tests.Support;
using NvDinoPipeline.Model;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training.Core.Checkpoints;
using static TorchSharp.torch;
using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Export.Tests;

/// <summary>
/// <c>export.checkpoint</c> picks what is exported, as in TAO: the final backbone, the checkpoint of an epoch, the best
/// epoch, or a named file. Epoch checkpoints are written the way the trainer writes them.
/// </summary>
public sealed class CheckpointSelectionTests : IDisposable
{
    private static readonly BackboneConfig Pico = TestBackbones.Pico(imgSize: 28);

    private readonly ExportTestBed _bed = new();
    private readonly VisionTransformer _epoch1 = TestBackbones.Create(Pico, seed: 101);
    private readonly VisionTransformer _epoch2 = TestBackbones.Create(Pico, seed: 102);
    private readonly VisionTransformer _student = TestBackbones.Create(Pico, seed: 103);

    [Fact]
    public async Task An_epoch_number_exports_the_teacher_of_that_epochs_checkpoint()
    {
        await WriteTrainingCheckpointsAsync();

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=2")))).Completed;

        var metadata = ExportTestBed.Metadata(exported);
        Assert.EndsWith("/checkpoints/epoch_002.ckpt", metadata.Source!.Uri);
        Assert.Equal("epoch 2", metadata.Source.Selection);
        AssertExportOf(_epoch2, exported, otherwise: _epoch1);
    }

    [Fact]
    public async Task Best_exports_the_epoch_with_the_lowest_training_loss()
    {
        await WriteTrainingCheckpointsAsync();

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=best")))).Completed;

        var metadata = ExportTestBed.Metadata(exported);
        Assert.EndsWith("/checkpoints/epoch_001.ckpt", metadata.Source!.Uri);
        Assert.Equal("best (epoch 1)", metadata.Source.Selection);
        AssertExportOf(_epoch1, exported, otherwise: _epoch2);
    }

    [Fact]
    public async Task A_relative_path_is_read_from_the_source_jobs_folder()
    {
        await WriteTrainingCheckpointsAsync();

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=checkpoints/epoch_002.ckpt")))).Completed;

        Assert.Equal("checkpoints/epoch_002.ckpt", ExportTestBed.Metadata(exported).Source!.Selection);
        AssertExportOf(_epoch2, exported, otherwise: _epoch1);
    }

    [Fact]
    public async Task A_bare_checkpoint_file_name_is_read_from_the_source_jobs_checkpoints_folder()
    {
        await WriteTrainingCheckpointsAsync();

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=epoch_002.ckpt")))).Completed;

        Assert.EndsWith("/checkpoints/epoch_002.ckpt", ExportTestBed.Metadata(exported).Source!.Uri);
        AssertExportOf(_epoch2, exported, otherwise: _epoch1);
    }

    [Fact]
    public async Task An_epoch_without_a_checkpoint_fails_listing_the_epochs_that_have_one()
    {
        await WriteTrainingCheckpointsAsync();

        var error = await _bed.FailsAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=7")));

        Assert.Contains("epoch_007.ckpt", error.Message);
        Assert.Contains("epochs with a checkpoint: 1, 2", error.Message);
    }

    [Fact]
    public async Task Latest_of_a_distillation_exports_its_student_ema_backbone()
    {
        var emaUri = await _bed.StoreBackboneAsync(_epoch2, _bed.SourceFolder.Append("student_ema_backbone.safetensors"));

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico), PipelineStage.Distillation, backbone: emaUri))).Completed;

        Assert.Equal(emaUri.AbsoluteUri, ExportTestBed.Metadata(exported).Source!.Uri);
        AssertExportOf(_epoch2, exported, otherwise: _epoch1);
    }

    [Fact]
    public async Task A_checkpoint_holding_teacher_student_and_ema_exports_the_ema_after_distillation()
    {
        var path = _bed.Temp.Combine("distill.ckpt");
        TrainingCheckpointFile.Write(path,
            [.. Prefixed("teacher.backbone.", _epoch1), .. Prefixed("student.backbone.", _student), .. Prefixed("student_ema.backbone.", _epoch2)],
            State(epoch: 1, loss: 1.0), Pico);
        var uri = _bed.SourceFolder.Append("checkpoints/epoch_001.ckpt");
        await _bed.Store.PutFileAsync(uri, path, CancellationToken.None);

        var exported = (await _bed.RunAsync(_bed.Command(ExportTestBed.Spec(Pico, "export.checkpoint=1"), PipelineStage.Distillation))).Completed;

        AssertExportOf(_epoch2, exported, otherwise: _epoch1);
    }

    public void Dispose()
    {
        _epoch1.Dispose();
        _epoch2.Dispose();
        _student.Dispose();
        _bed.Dispose();
    }

    /// <summary>Checkpoints of two epochs as the trainer writes them (teacher, student, a head tensor, training state).</summary>
    private async Task WriteTrainingCheckpointsAsync()
    {
        foreach (var (epoch, teacher, loss) in new[] { (1, _epoch1, 2.5), (2, _epoch2, 4.0) })
        {
            var path = _bed.Temp.Combine($"epoch_{epoch:D3}.ckpt");
            using var head = ones(8, 64);
            TrainingCheckpointFile.Write(path,
                [.. Prefixed("teacher.backbone.", teacher), .. Prefixed("student.backbone.", _student), new("teacher.dino_head.last_layer.weight", head)],
                State(epoch, loss), Pico);
            await _bed.Store.PutFileAsync(_bed.SourceFolder.Append($"checkpoints/epoch_{epoch:D3}.ckpt"), path, CancellationToken.None);
        }
    }

    private static TrainingState State(int epoch, double loss) => new()
    {
        Kind = "nvdinov2-ssl",
        GlobalStep = epoch * 10,
        Epoch = epoch,
        Epochs = 2,
        IterationsPerEpoch = 10,
        BatchSize = 4,
        Seed = 1,
        Precision = "fp32",
        OptimizerParameters = [],
        Metrics = new Dictionary<string, double> { ["loss"] = loss },
    };

    private static IEnumerable<KeyValuePair<string, Tensor>> Prefixed(string prefix, VisionTransformer model) =>
        model.named_parameters().Select(p => new KeyValuePair<string, Tensor>(prefix + p.name, p.parameter));

    private static void AssertExportOf(VisionTransformer expected, ModelExported exported, VisionTransformer otherwise)
    {
        var same = TestBackbones.CompareExport(expected, exported.OnnxModelUri, 28, 28);
        Assert.True(same.IsWithin(1e-4, 0.99999), $"the export does not compute the selected backbone: {same}");
        var other = TestBackbones.CompareExport(otherwise, exported.OnnxModelUri, 28, 28);
        Assert.False(other.IsWithin(1e-2, 0.99), $"the export also matches the backbone that was not selected: {other}");
    }
}
