using NvDinoPipeline.Model;
using NvDinoPipeline.Specs;
using NvDinoPipeline.Training.Core;

namespace NvDinoPipeline.Distillation;

/// <summary>
/// A distillation run as the spec describes it: the training keys (<see cref="TrainingSpec"/>, with
/// <c>model.backbone.teacher_type</c> as the teacher) plus <c>model.backbone.student_type</c>,
/// <c>model.distill.*</c> and <c>distill.*</c>.
/// </summary>
public sealed record DistillationSpec
{
    public const string TeacherCheckpointKey = "distill.teacher_checkpoint";

    public required TrainingSpec Training { get; init; }

    public required DistillationTrainerOptions Trainer { get; init; }

    public required string TeacherType { get; init; }

    public required string StudentType { get; init; }

    /// <summary><c>distill.teacher_checkpoint</c>: latest, best (lowest mean training loss of an epoch checkpoint), an
    /// epoch number, or a path (absolute, a file:// or s3:// URI, or a name in the training job's checkpoint folder).</summary>
    public string TeacherCheckpoint { get; init; } = "latest";

    /// <summary><c>distill.teacher_backbone</c>: which network of the training checkpoint teaches, "teacher" (EMA) or "student".</summary>
    public required string TeacherBackbone { get; init; }

    /// <exception cref="SpecValidationException">A key is missing or unusable.</exception>
    public static DistillationSpec Read(ResolvedSpec spec, long? unfixedSeed = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var training = TrainingSpec.Read(spec, unfixedSeed);
        var teacher = training.Trainer.Backbone;
        var teacherType = spec.Get<string>("model.backbone.teacher_type");
        var studentType = spec.Get<string>("model.backbone.student_type");
        BackboneConfig named;
        try
        {
            named = BackboneConfig.FromName(studentType, teacher.PatchSize, teacher.ImgSize);
        }
        catch (ArgumentException exception)
        {
            throw new SpecValidationException([new SpecError("model.backbone.student_type", exception.Message)]);
        }
        // The student keeps every setting of the teacher but its size: patch, image size, FFN, registers, drop-path.
        var student = teacher with { EmbedDim = named.EmbedDim, Depth = named.Depth, NumHeads = named.NumHeads };
        // A student larger than its teacher is refused by the spec rules when the pipeline starts.
        var epochs = spec.Get<int?>("distill.num_epochs") ?? training.Trainer.Epochs;
        // Distillation trains in fp32 whatever train.precision says; that key applies to the training stage.
        var trainer = training.Trainer with
        {
            Precision = TrainingPrecision.Fp32,
            Epochs = epochs,
            Optim = training.Trainer.Optim with { WarmupEpochs = Math.Min(training.Trainer.Optim.WarmupEpochs, epochs) },
        };
        return new DistillationSpec
        {
            Training = training,
            TeacherType = teacherType,
            StudentType = studentType,
            TeacherBackbone = spec.Get<string>("distill.teacher_backbone"),
            TeacherCheckpoint = spec.Get<string>(TeacherCheckpointKey),
            Trainer = new DistillationTrainerOptions
            {
                Trainer = trainer,
                Student = student,
                DisableMasking = spec.Get<bool>("model.distill.disable_masking"),
                ClsFeatureWeight = spec.Get<double>("model.distill.feature_matching.cls_weight"),
                PatchFeatureWeight = spec.Get<double>("model.distill.feature_matching.patch_weight"),
            },
        };
    }
}
