using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Distillation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Model.Weights;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Staging;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Training;
using StbImageWriteSharp;

namespace NvDinoPipeline.Benchmarks.Distillation;

/// <summary>The backbones a run produced, with how long its stages took.</summary>
internal sealed record RunOutcome(VisionTransformer Teacher, VisionTransformer Student, VisionTransformer StudentEma, double TeacherMinutes, double DistillMinutes) : IDisposable
{
    public void Dispose()
    {
        Teacher.Dispose();
        Student.Dispose();
        StudentEma.Dispose();
    }
}

/// <summary>
/// The workers' own path: the training images as a tar.gz of PNGs, staged by <see cref="DatasetStagingRunner"/>,
/// the teacher trained by <see cref="TrainingRunner"/> and the student distilled by <see cref="DistillationRunner"/>
/// from the training job's checkpoint, each with the spec the pipeline would send it; the backbones are read back
/// from the job folders. Teacher vit_nano (128/4/4), student vit_pico (64/2/2): the spec's smallest named sizes.
/// </summary>
internal static class WorkerPath
{
    public static string[] SpecOverrides(int side, int localSide, int epochs, double clsWeight) =>
    [
        "model.backbone.teacher_type=vit_nano",
        "model.backbone.student_type=vit_pico",
        "pipeline.stages.distill=true",
        "model.backbone.patch_size=14",
        $"model.backbone.img_size={side}",
        "model.backbone.ffn_layer=mlp",
        "model.backbone.layerscale_init=null",
        "model.backbone.drop_path_rate=0",
        "model.head.num_layers=3",
        "model.head.hidden_dim=512",
        "model.head.bottleneck_dim=128",
        "model.head.num_prototypes=256",
        "dataset.batch_size=64",
        "dataset.workers=2",
        $"dataset.transform.global_crops_size={side}",
        "dataset.transform.global_crops_scale=[0.35, 1.0]",
        $"dataset.transform.local_crops_size={localSide}",
        "dataset.transform.n_local_crops=4",
        "dataset.transform.local_crops_scale=[0.1, 0.35]",
        $"train.num_epochs={epochs}",
        "train.seed=1",
        "train.optim.lr=0.008",
        "train.optim.min_lr=1e-6",
        "train.optim.warmup_epochs=1",
        "train.optim.layerwise_decay=1.0",
        "train.optim.freeze_last_layer_epochs=0",
        "train.teacher.momentum_teacher=0.98",
        "train.teacher.warmup_teacher_temp=0.04",
        "train.teacher.teacher_temp=0.05",
        "train.teacher.warmup_teacher_temp_epochs=1",
        $"model.distill.feature_matching.cls_weight={clsWeight.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
    ];

    public static async Task<RunOutcome> RunAsync(IReadOnlyList<DecodedImage> images, ResolvedSpec spec, string folder)
    {
        var root = Path.Combine(folder, "artifacts");
        Directory.CreateDirectory(root);
        using var store = new ArtifactStore(Options.Create(new ArtifactStoreOptions { Root = new Uri(root + "/").AbsoluteUri, AllowedReadRoots = [folder] }));
        var pipelineId = Guid.NewGuid();

        var archive = Path.Combine(folder, "images_train.tar.gz");
        WriteArchive(archive, images);
        var stageJob = Guid.NewGuid();
        var stage = new StageDataset
        {
            PipelineId = pipelineId, JobId = stageJob, Spec = spec.ToJson(), OutputUri = store.JobFolder(pipelineId, stageJob),
            SourceUri = new Uri(archive), Role = DatasetRole.Train, Force = true,
        };
        var clock = Stopwatch.StartNew();
        var staged = (await new DatasetStagingRunner(store, Options.Create(new StagingOptions()), NullLogger<DatasetStagingRunner>.Instance)
            .RunAsync(stage, Context(stage, PipelineStage.Staging, spec, folder), CancellationToken.None)).Completed;
        Console.WriteLine($"staging worker: {staged.ImageCount} images staged from {new FileInfo(archive).Length / 1e6:F1} MB of PNGs in {clock.Elapsed.TotalSeconds:F1} s " +
                          $"({staged.SkippedCount} skipped, {staged.DuplicateCount} duplicates)");

        var trainJob = Guid.NewGuid();
        var train = new TrainModel
        {
            PipelineId = pipelineId, JobId = trainJob, ParentJobId = stageJob, Spec = spec.ToJson(), OutputUri = store.JobFolder(pipelineId, trainJob),
            DatasetUri = staged.DatasetUri, ManifestUri = staged.ManifestUri,
        };
        clock.Restart();
        var trained = (await new TrainingRunner(store, Options.Create(new TrainingOptions { Device = "cpu" }), NullLogger<TrainingRunner>.Instance)
            .RunAsync(train, Context(train, PipelineStage.Training, spec, folder), CancellationToken.None)).Completed;
        var teacherMinutes = clock.Elapsed.TotalMinutes;
        Console.WriteLine($"training worker: {trained.Epochs} epochs in {teacherMinutes:F1} min, checkpoint {trained.CheckpointUri}");

        var distillJob = Guid.NewGuid();
        var distill = new DistillModel
        {
            PipelineId = pipelineId, JobId = distillJob, ParentJobId = trainJob, Spec = spec.ToJson(), OutputUri = store.JobFolder(pipelineId, distillJob),
            TeacherCheckpointUri = trained.CheckpointUri, DatasetUri = staged.DatasetUri, ManifestUri = staged.ManifestUri,
        };
        clock.Restart();
        var distilled = (await new DistillationRunner(store, Options.Create(new DistillationOptions { Device = "cpu" }), NullLogger<DistillationRunner>.Instance)
            .RunAsync(distill, Context(distill, PipelineStage.Distillation, spec, folder), CancellationToken.None)).Completed;
        var distillMinutes = clock.Elapsed.TotalMinutes;
        Console.WriteLine($"distillation worker: done in {distillMinutes:F1} min, student EMA {distilled.StudentEmaBackboneUri}");

        return new RunOutcome(
            await LoadAsync(store, trained.TeacherBackboneUri, folder),
            await LoadAsync(store, distilled.StudentBackboneUri, folder),
            await LoadAsync(store, distilled.StudentEmaBackboneUri, folder),
            teacherMinutes, distillMinutes);
    }

    private static StageContext Context(IStageCommand command, PipelineStage stage, ResolvedSpec spec, string folder)
    {
        var scratch = Path.Combine(folder, "scratch", stage.ToString());
        Directory.CreateDirectory(scratch);
        return new StageContext(command, stage, spec, command.OutputUri, scratch, NullLogger.Instance, (progress, _, _) =>
        {
            if (progress.Message is { } message && (message.Contains(" done", StringComparison.Ordinal) || message.StartsWith("resuming", StringComparison.Ordinal)))
                Console.WriteLine($"  {stage}: {message}");
            return Task.CompletedTask;
        });
    }

    private static async Task<VisionTransformer> LoadAsync(IArtifactStore store, Uri uri, string folder)
    {
        var path = await store.GetLocalPathAsync(uri, Path.Combine(folder, "downloads"), CancellationToken.None);
        var config = BackboneWeights.ReadConfig(path) ?? throw new InvalidDataException($"{uri} records no backbone config.");
        var network = new VisionTransformer(config);
        BackboneWeights.Load(network, path, new LoadOptions { Strict = true });
        return network;
    }

    /// <summary>The images as grey-level PNGs in a tar.gz, as a user would hand them to the pipeline.</summary>
    private static void WriteArchive(string path, IReadOnlyList<DecodedImage> images)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        var writer = new ImageWriter();
        for (var i = 0; i < images.Count; i++)
        {
            var image = images[i];
            using var png = new MemoryStream();
            writer.WritePng(image.Pixels, image.Width, image.Height, image.Channels == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, png);
            png.Position = 0;
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"images/{i:D6}.png") { DataStream = png });
        }
    }
}
