using NvDinoPipeline.Model;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Training.Core.Data;

namespace NvDinoPipeline.Training.Tests;

/// <summary>A training setup small enough for unit tests: a 2-block ViT of width 64 on 28-pixel images, 64 prototypes.</summary>
internal static class TinyTraining
{
    public static BackboneConfig Backbone { get; } = BackboneConfig.VitPico(patchSize: 14, imgSize: 28) with { DropPathRate = 0.1 };

    public static SslTrainerOptions Trainer(int epochs = 3, int batchSize = 4, TrainingPrecision precision = TrainingPrecision.Fp32, long seed = 7) => new()
    {
        Backbone = Backbone,
        Head = new SslHeadOptions { NumLayers = 2, HiddenDim = 32, BottleneckDim = 16, NumPrototypes = 64 },
        Optim = new SslOptimOptions { BaseLr = 0.05, WarmupEpochs = 1, FreezeLastLayerEpochs = 1, MinLr = 1e-4 },
        Teacher = new SslTeacherOptions { MomentumTeacher = 0.9, WarmupTeacherTempEpochs = 1 },
        Epochs = epochs,
        BatchSize = batchSize,
        Seed = seed,
        Precision = precision,
        Device = "cpu",
    };

    public static SslDataOptions Data(int batchSize = 4, int workers = 0) => new()
    {
        BatchSize = batchSize,
        PatchSize = 14,
        Crops = new MultiCropOptions { GlobalCropsSize = 28, LocalCropsSize = 14, LocalCropsNumber = 2 },
        // Masks on most global crops, so that the iBOT loss has patches to work on in every small batch.
        MaskSampleProbability = 0.75,
        MaskRatioMin = 0.25,
        MaskRatioMax = 0.75,
        Workers = workers,
    };

    /// <summary>The spec templates with the tiny model and short run put in by overrides.</summary>
    public static ResolvedSpec Spec(params string[] extra)
    {
        string[] overrides =
        [
            "model.backbone.teacher_type=vit_pico", "model.backbone.student_type=vit_pico", "model.backbone.patch_size=14",
            "model.backbone.img_size=28", "model.backbone.ffn_layer=mlp", "model.backbone.drop_path_rate=0.1",
            "model.head.num_layers=2", "model.head.hidden_dim=32", "model.head.bottleneck_dim=16", "model.head.num_prototypes=64",
            "dataset.batch_size=4", "dataset.workers=1", "dataset.transform.global_crops_size=28",
            "dataset.transform.n_local_crops=2", "dataset.transform.local_crops_size=14",
            "train.num_epochs=2", "train.optim.warmup_epochs=1", "train.teacher.warmup_teacher_temp_epochs=1",
            "train.optim.lr=0.05", "train.seed=11",
        ];
        return SpecLoader.CreateDefault().ResolveDocuments([], [.. overrides, .. extra]);
    }
}
