using NvDinoPipeline.Model;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Distillation.Tests;

/// <summary>Setups small enough for unit tests: 28-pixel images, 64 prototypes, teachers and students of a few blocks.</summary>
internal static class TinyDistillation
{
    /// <summary>A 64-wide, 2-block teacher.</summary>
    public static BackboneConfig Teacher { get; } = BackboneConfig.VitPico(patchSize: 14, imgSize: 28) with { DropPathRate = 0.1 };

    /// <summary>A 32-wide, 2-block student.</summary>
    public static BackboneConfig Student { get; } = Teacher with { EmbedDim = 32, NumHeads = 2 };

    public static SslHeadOptions Head { get; } = new() { NumLayers = 2, HiddenDim = 32, BottleneckDim = 16, NumPrototypes = 64 };

    public static SslTrainerOptions Recipe(BackboneConfig backbone, int epochs = 2, int batchSize = 4, long seed = 7) => new()
    {
        Backbone = backbone,
        Head = Head,
        Optim = new SslOptimOptions { BaseLr = 0.05, WarmupEpochs = 1, FreezeLastLayerEpochs = 1, MinLr = 1e-4 },
        Teacher = new SslTeacherOptions { MomentumTeacher = 0.9, WarmupTeacherTempEpochs = 1 },
        Epochs = epochs,
        BatchSize = batchSize,
        Seed = seed,
        Device = "cpu",
    };

    public static SslDataOptions Data(int batchSize = 4) => new()
    {
        BatchSize = batchSize,
        PatchSize = 14,
        Crops = new MultiCropOptions { GlobalCropsSize = 28, LocalCropsSize = 14, LocalCropsNumber = 2 },
        MaskSampleProbability = 0.75,
        MaskRatioMin = 0.25,
        MaskRatioMax = 0.75,
        Workers = 0,
    };

    /// <summary>A training checkpoint (teacher, student, heads, centers) of <paramref name="backbone"/>, after one training step.</summary>
    public static string TrainedCheckpoint(string folder, BackboneConfig backbone)
    {
        var images = TestImages.Blocks(8);
        using var trainer = new SslTrainer(Recipe(backbone, epochs: 1), iterationsPerEpoch: 2);
        var loader = new SslBatchLoader(images, Data(), 7);
        using (var batch = loader.Epoch(0, 0, CancellationToken.None).First())
            trainer.Step(batch);
        return trainer.SaveCheckpoint(folder).CheckpointPath;
    }

    /// <summary>The spec templates with a tiny distillation put in by overrides.</summary>
    public static ResolvedSpec Spec(string teacherType, string studentType, params string[] extra)
    {
        string[] overrides =
        [
            $"model.backbone.teacher_type={teacherType}", $"model.backbone.student_type={studentType}", "model.distill.enable=true",
            "model.backbone.patch_size=14", "model.backbone.img_size=28", "model.backbone.ffn_layer=mlp", "model.backbone.drop_path_rate=0.1",
            "model.head.num_layers=2", "model.head.hidden_dim=32", "model.head.bottleneck_dim=16", "model.head.num_prototypes=64",
            "dataset.batch_size=4", "dataset.workers=1", "dataset.transform.global_crops_size=28",
            "dataset.transform.n_local_crops=2", "dataset.transform.local_crops_size=14",
            "train.num_epochs=2", "train.optim.warmup_epochs=1", "train.teacher.warmup_teacher_temp_epochs=1",
            "train.optim.lr=0.05", "train.seed=11",
        ];
        return SpecLoader.CreateDefault().ResolveDocuments([], [.. overrides, .. extra]);
    }
}
