using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Losses;
using NvDinoPipeline.Ssl.Schedules;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core;

/// <summary>The teacher's side of one step: its features of the global crops and its DINO and iBOT targets.</summary>
internal sealed record TeacherTargets(BackboneOutput Features, Tensor Dino, Tensor? Ibot)
{
    /// <summary>Mean entropy of the DINO targets: near 0 when the teacher collapses onto one prototype, ln K when uniform.</summary>
    public double Entropy() => -(Dino * Dino.ClampedMin(1e-12).log()).sum(-1).mean().item<float>();
}

/// <summary>The teacher's features of the global crops and its float32 DINO (class token) and iBOT (masked patch) head scores.</summary>
internal sealed record TeacherScores(BackboneOutput Features, Tensor Dino, Tensor? Ibot);

/// <summary>The student's side of one step: its features of the global crops and its DINO, KoLeo and iBOT terms.</summary>
internal sealed record StudentTerms(BackboneOutput Global, DinoLossTerms Dino, Tensor Koleo, Tensor Ibot)
{
    /// <summary>The weighted sum DINOv2 minimises. Numbers go to libtorch through HeldScalars (see the model library).</summary>
    public Tensor Total(SslLossOptions loss) =>
        Dino.Total().Times(loss.DinoLossWeight).Plus(Ibot.Times(loss.IbotLossWeight)).Plus(Koleo.Times(loss.KoleoLossWeight));

    /// <summary>The terms for a divergence message.</summary>
    public string Describe() =>
        $"DINO local {Dino.LocalCrops.item<float>()}, DINO global {Dino.GlobalCrops.item<float>()}, iBOT {Ibot.item<float>()}, KoLeo {Koleo.item<float>()}";

    /// <summary>The figures every step reports (<see cref="TrainingMetrics"/>); the trainer adds its own.</summary>
    public Dictionary<string, double> Metrics(double total, SslScheduleValues values, double gradNorm, long targetPatches) => new()
    {
        [TrainingMetrics.Loss] = total,
        [TrainingMetrics.DinoLocalLoss] = Dino.LocalCrops.item<float>(),
        [TrainingMetrics.DinoGlobalLoss] = Dino.GlobalCrops.item<float>(),
        [TrainingMetrics.IbotLoss] = Ibot.item<float>(),
        [TrainingMetrics.KoleoLoss] = Koleo.item<float>(),
        [TrainingMetrics.Lr] = values.Lr,
        [TrainingMetrics.LastLayerLr] = values.LastLayerLr,
        [TrainingMetrics.WeightDecay] = values.WeightDecay,
        [TrainingMetrics.TeacherTemp] = values.TeacherTemp,
        [TrainingMetrics.GradNorm] = gradNorm,
        [TrainingMetrics.MaskedPatches] = targetPatches,
    };
}

/// <summary>
/// The objective training and distillation share (DINOv2 <c>SSLMetaArch.forward_backward</c>): DINO on the class token
/// over all crops against the teacher's global crops, iBOT on the target patches, KoLeo per global crop, all computed
/// in float32 whatever the networks compute in. The loss centers are state and travel in checkpoints.
/// </summary>
internal sealed class SslObjective : IDisposable
{
    public const int GlobalCrops = 2;

    private readonly SslLossOptions loss;

    public SslObjective(int numPrototypes, SslLossOptions loss, Device device)
    {
        this.loss = loss;
        Dino = new DinoLoss(numPrototypes, loss.StudentTemp, loss.CenterMomentum);
        Ibot = new IbotPatchLoss(numPrototypes, loss.StudentTemp, loss.CenterMomentum);
        Dino.to(device);
        Ibot.to(device);
    }

    public DinoLoss Dino { get; }

    public IbotPatchLoss Ibot { get; }

    /// <summary>The loss centers under their checkpoint keys.</summary>
    public IEnumerable<(string Key, Tensor Tensor)> StateTensors()
    {
        yield return ("dino_loss.center", Dino.Center);
        yield return ("ibot_patch_loss.center", Ibot.Center);
    }

    /// <summary>The teacher's features and float32 DINO and iBOT head scores, without gradients; no iBOT scores when <paramref name="patchIndices"/> is empty.</summary>
    public static TeacherScores Score(SslNetwork teacher, Tensor global, Tensor patchIndices)
    {
        using var noGrad = torch.no_grad();
        var features = teacher.Backbone.forward_features(global);
        var dino = Float32(teacher.DinoHead.forward(features.ClsToken));
        Tensor? ibot = null;
        if (patchIndices.shape[0] > 0)
            ibot = Float32(teacher.IbotHead.forward(features.PatchTokens.flatten(0, 1).index_select(0, patchIndices)));
        return new TeacherScores(features, dino, ibot);
    }

    /// <summary>
    /// The teacher's targets from the scores of every data-parallel replica of the step (one for a single device), each
    /// on its replica's device: softmax centering with the centers updated from the mean over all replicas, or
    /// Sinkhorn-Knopp over all of them, as DINOv2's all-reduces do; no iBOT targets for a replica without masked patches.
    /// </summary>
    public TeacherTargets[] Targets(IReadOnlyList<TeacherScores> scores, double teacherTemp)
    {
        ArgumentNullException.ThrowIfNull(scores);
        using var noGrad = torch.no_grad();
        var dino = Dino.TeacherTargets(scores.Select(s => s.Dino).ToArray(), teacherTemp, loss.Centering, loss.SinkhornIterations);
        var ibot = new Tensor?[scores.Count];
        if (scores.Any(s => s.Ibot is not null))
        {
            var parts = scores.Select(s => s.Ibot ?? torch.empty([0, s.Dino.shape[1]], ScalarType.Float32, s.Dino.device)).ToArray();
            var targets = Ibot.TeacherTargets(parts, teacherTemp, loss.Centering, loss.SinkhornIterations);
            for (var r = 0; r < scores.Count; r++)
                ibot[r] = scores[r].Ibot is null ? null : targets[r];
        }
        return scores.Select((s, r) => new TeacherTargets(s.Features, dino[r], ibot[r])).ToArray();
    }

    /// <summary>
    /// The student's terms: its backbone sees the global crops with <paramref name="backboneMasks"/> applied (null: whole
    /// crops) and the local crops; iBOT compares the patches at <paramref name="patchIndices"/> with the teacher's.
    /// </summary>
    public StudentTerms Learn(SslNetwork student, Tensor global, Tensor? local, Tensor? backboneMasks, Tensor masks,
        Tensor patchIndices, Tensor masksWeight, TeacherTargets teacher)
    {
        var studentGlobal = student.Backbone.forward_features(global, backboneMasks);
        var studentLocalCls = local is null ? null : Float32(student.DinoHead.forward(student.Backbone.forward_features(local).ClsToken));
        var dino = Dino.MultiCropLoss(Float32(student.DinoHead.forward(studentGlobal.ClsToken)), studentLocalCls, teacher.Dino, GlobalCrops);
        var koleo = KoLeoLoss.PerGlobalCrop(Float32(studentGlobal.ClsToken), GlobalCrops);
        var ibot = teacher.Ibot is null
            ? torch.zeros([], ScalarType.Float32, global.device)
            : Ibot.ForwardMasked(Float32(student.IbotHead.forward(studentGlobal.PatchTokens.flatten(0, 1).index_select(0, patchIndices))),
                teacher.Ibot, masks, masksWeight);
        return new StudentTerms(studentGlobal, dino, koleo, ibot);
    }

    // The networks may compute in bfloat16; the losses, as under autocast, always in float32: a softmax at teacher
    // temperature 0.04 and KoLeo's log of nearest-neighbour distances lose too much in 8 mantissa bits (KoLeo's
    // distances between near-identical class tokens round to 0). The cast is where the gradient returns to bfloat16.
    private static Tensor Float32(Tensor tensor) => tensor.dtype == ScalarType.Float32 ? tensor : tensor.to(ScalarType.Float32);

    public void Dispose()
    {
        Dino.Dispose();
        Ibot.Dispose();
    }
}
