using NvDinoPipeline.Checkpoints;

namespace NvDinoPipeline.Training.Core;

/// <summary>Names of the figures a training step and epoch report (progress messages, metrics.jsonl, completion).</summary>
public static class TrainingMetrics
{
    public const string Epoch = "epoch";
    public const string Step = "step";
    public const string TotalSteps = "total_steps";
    public const string Loss = NvDinoPipeline.Checkpoints.TrainingState.LossMetric;
    public const string DinoLocalLoss = "dino_local_crops_loss";
    public const string DinoGlobalLoss = "dino_global_crops_loss";
    public const string IbotLoss = "ibot_loss";
    public const string KoleoLoss = "koleo_loss";
    public const string Lr = "lr";
    public const string LastLayerLr = "last_layer_lr";
    public const string WeightDecay = "wd";
    public const string TeacherMomentum = "teacher_momentum";
    public const string TeacherTemp = "teacher_temp";
    /// <summary>Mean entropy (nats) of the teacher's class-token targets: near 0 or near log(prototypes) signals collapse.</summary>
    public const string TeacherEntropy = "teacher_entropy";
    public const string GradNorm = "grad_norm";
    public const string MaskedPatches = "masked_patches";
    public const string ImagesPerSecond = "images_per_second";
    public const string EpochSeconds = "epoch_seconds";
}
