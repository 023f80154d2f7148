using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>
/// DINO self-distillation loss on class tokens (Caron et al. 2021; DINOv2 <c>loss/dino_clstoken_loss.py</c>):
/// cross-entropy between the sharpened teacher distribution and the student's softmax at temperature
/// <see cref="StudentTemp"/>. Holds the running teacher <c>center</c> [1, K] as a buffer so it is part of
/// the state dict. DINOv2 applies the center update one step late (asynchronously, to overlap an
/// all-reduce); here it is applied right after the teacher targets are computed, which yields the same
/// center sequence on one process.
/// </summary>
public sealed class DinoLoss : nn.Module
{
    public DinoLoss(long outDim, double studentTemp = 0.1, double centerMomentum = 0.9) : base(nameof(DinoLoss))
    {
        if (outDim <= 0) throw new ArgumentOutOfRangeException(nameof(outDim), outDim, "must be positive (the number of prototypes)");
        if (!(studentTemp > 0)) throw new ArgumentOutOfRangeException(nameof(studentTemp), studentTemp, "must be positive");
        if (!(centerMomentum >= 0 && centerMomentum <= 1)) throw new ArgumentOutOfRangeException(nameof(centerMomentum), centerMomentum, "must be in [0, 1]");
        OutDim = outDim;
        StudentTemp = studentTemp;
        CenterMomentum = centerMomentum;
        register_buffer("center", torch.zeros(1, outDim));
    }

    public long OutDim { get; }

    public double StudentTemp { get; }

    public double CenterMomentum { get; }

    /// <summary>The running mean of teacher outputs [1, K].</summary>
    public Tensor Center => get_buffer("center")!;

    /// <summary>softmax((teacher − center) / teacherTemp) over prototypes, without gradients.</summary>
    public Tensor SoftmaxCenterTeacher(Tensor teacherOutput, double teacherTemp)
    {
        CheckScores(teacherOutput, nameof(teacherOutput));
        if (!(teacherTemp > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemp), teacherTemp, "must be positive");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var centered = teacherOutput.to(ScalarType.Float32) - Center.to(teacherOutput.device);
        return centered.DividedBy(teacherTemp).softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>center ← m·center + (1 − m)·mean over rows of <paramref name="teacherOutput"/> [B, K].</summary>
    public void UpdateCenter(Tensor teacherOutput)
    {
        CheckScores(teacherOutput, nameof(teacherOutput));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var center = Center;
        var batchCenter = teacherOutput.to(ScalarType.Float32).to(center.device).mean(new long[] { 0 }, keepdim: true);
        center.TimesInPlace(CenterMomentum).PlusInPlace(batchCenter, 1 - CenterMomentum);
    }

    /// <summary>
    /// center ← m·center + (1 − m)·mean over the rows of every part: DINOv2's update after its all-reduce of the batch
    /// sums, with the parts being the data-parallel replicas' teacher scores of one step (on any devices).
    /// </summary>
    public void UpdateCenter(IReadOnlyList<Tensor> teacherOutputs)
    {
        ArgumentNullException.ThrowIfNull(teacherOutputs);
        if (teacherOutputs.Count == 1)
        {
            UpdateCenter(teacherOutputs[0]);
            return;
        }
        foreach (var part in teacherOutputs)
            CheckScores(part, nameof(teacherOutputs));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var center = Center;
        var batchCenter = ReplicaSums.MeanOverRows(teacherOutputs, center.device).view(1, -1);
        center.TimesInPlace(CenterMomentum).PlusInPlace(batchCenter, 1 - CenterMomentum);
    }

    /// <summary>
    /// Teacher targets for the teacher scores of every data-parallel replica of one step, each on its own device: as
    /// <see cref="TeacherTargets(Tensor, double, TeacherCentering, int)"/> on all their rows together, which is what
    /// DINOv2's all-reduces compute (the center update from the mean over every replica's rows; Sinkhorn-Knopp's sums
    /// over every replica).
    /// </summary>
    public Tensor[] TeacherTargets(IReadOnlyList<Tensor> teacherOutputs, double teacherTemp, TeacherCentering centering, int sinkhornIterations = 3)
    {
        ArgumentNullException.ThrowIfNull(teacherOutputs);
        if (teacherOutputs.Count == 1)
            return [TeacherTargets(teacherOutputs[0], teacherTemp, centering, sinkhornIterations)];
        switch (centering)
        {
            case TeacherCentering.Softmax:
                var targets = teacherOutputs.Select(part => SoftmaxCenterTeacher(part, teacherTemp)).ToArray();
                UpdateCenter(teacherOutputs);
                return targets;
            case TeacherCentering.SinkhornKnopp:
                foreach (var part in teacherOutputs)
                    CheckScores(part, nameof(teacherOutputs));
                return SinkhornKnopp.Normalize(teacherOutputs, teacherTemp, sinkhornIterations);
            default:
                throw new ArgumentOutOfRangeException(nameof(centering), centering, "unknown teacher centering");
        }
    }

    /// <summary>
    /// Teacher targets [B, K] for teacher scores [B, K]. With <see cref="TeacherCentering.Softmax"/> the
    /// center is used and then updated from these scores; Sinkhorn-Knopp leaves the center untouched.
    /// </summary>
    public Tensor TeacherTargets(Tensor teacherOutput, double teacherTemp, TeacherCentering centering, int sinkhornIterations = 3)
    {
        switch (centering)
        {
            case TeacherCentering.Softmax:
                var targets = SoftmaxCenterTeacher(teacherOutput, teacherTemp);
                UpdateCenter(teacherOutput);
                return targets;
            case TeacherCentering.SinkhornKnopp:
                CheckScores(teacherOutput, nameof(teacherOutput));
                return SinkhornKnopp.Normalize(teacherOutput, teacherTemp, sinkhornIterations);
            default:
                throw new ArgumentOutOfRangeException(nameof(centering), centering, "unknown teacher centering");
        }
    }

    /// <summary>
    /// DINOv2's <c>forward</c>: −Σ over student chunks s and teacher chunks t of mean over samples of
    /// Σ_k t·log softmax(s / student_temp). Every student chunk is paired with every teacher chunk.
    /// Computed in float32.
    /// </summary>
    public Tensor CrossEntropy(IReadOnlyList<Tensor> studentOutputs, IReadOnlyList<Tensor> teacherTargets)
    {
        ArgumentNullException.ThrowIfNull(studentOutputs);
        ArgumentNullException.ThrowIfNull(teacherTargets);
        if (studentOutputs.Count == 0) throw new ArgumentException("needs at least one student chunk", nameof(studentOutputs));
        if (teacherTargets.Count == 0) throw new ArgumentException("needs at least one teacher chunk", nameof(teacherTargets));

        using var scope = torch.NewDisposeScope();
        Tensor? total = null;
        foreach (var s in studentOutputs)
        {
            // float32 whatever the model's dtype: DINOv2 gets the same from autocast.
            var lsm = s.to(ScalarType.Float32).DividedBy(StudentTemp).log_softmax(-1);
            foreach (var t in teacherTargets)
            {
                if (!t.shape.SequenceEqual(s.shape))
                    throw new ArgumentException($"teacher chunk shape [{string.Join(", ", t.shape)}] differs from student chunk shape [{string.Join(", ", s.shape)}]", nameof(teacherTargets));
                var term = (t * lsm).sum(-1).mean();
                total = total is null ? -term : total - term;
            }
        }
        return total!.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The multi-crop DINO loss exactly as DINOv2's <c>SSLMetaArch.forward_backward</c> composes it:
    /// each local crop against every teacher global crop, each global crop against the teacher's other
    /// global crops (never its own view), both sums divided by the number of pairs
    /// nG·(nG − 1) + max(nG·nL, 1).
    /// </summary>
    /// <param name="studentGlobal">Student head outputs for the global crops [nG·B, K], crop-major (all images of crop 0, then crop 1, ...).</param>
    /// <param name="studentLocal">Student head outputs for the local crops [nL·B, K], crop-major, or null when there are none.</param>
    /// <param name="teacherTargets">Teacher targets for the global crops [nG·B, K], in the same crop order as <paramref name="studentGlobal"/>.</param>
    /// <param name="globalCrops">nG, the number of global crops (at least 2).</param>
    public DinoLossTerms MultiCropLoss(Tensor studentGlobal, Tensor? studentLocal, Tensor teacherTargets, int globalCrops = 2)
    {
        ArgumentNullException.ThrowIfNull(studentGlobal);
        ArgumentNullException.ThrowIfNull(teacherTargets);
        if (globalCrops < 2) throw new ArgumentOutOfRangeException(nameof(globalCrops), globalCrops, "needs at least 2 global crops");
        CheckScores(studentGlobal, nameof(studentGlobal));
        if (!studentGlobal.shape.SequenceEqual(teacherTargets.shape))
            throw new ArgumentException($"shape [{string.Join(", ", teacherTargets.shape)}] differs from studentGlobal [{string.Join(", ", studentGlobal.shape)}]", nameof(teacherTargets));
        if (studentGlobal.shape[0] % globalCrops != 0)
            throw new ArgumentException($"{studentGlobal.shape[0]} rows are not a multiple of {globalCrops} global crops", nameof(studentGlobal));
        var batch = studentGlobal.shape[0] / globalCrops;

        var localCrops = 0;
        if (studentLocal is not null && studentLocal.shape[0] > 0)
        {
            CheckScores(studentLocal, nameof(studentLocal));
            if (studentLocal.shape[0] % batch != 0 || studentLocal.shape[1] != studentGlobal.shape[1])
                throw new ArgumentException($"shape [{string.Join(", ", studentLocal.shape)}] is not [nL·{batch}, {studentGlobal.shape[1]}]", nameof(studentLocal));
            localCrops = (int)(studentLocal.shape[0] / batch);
        }

        using var scope = torch.NewDisposeScope();
        double pairs = globalCrops * (globalCrops - 1) + Math.Max(globalCrops * localCrops, 1);
        var teacherChunks = teacherTargets.chunk(globalCrops);
        var studentGlobalChunks = studentGlobal.chunk(globalCrops);

        var localLoss = localCrops > 0
            ? CrossEntropy(studentLocal!.chunk(localCrops), teacherChunks).DividedBy(pairs)
            : torch.zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: studentGlobal.device);

        Tensor? global = null;
        for (var i = 0; i < globalCrops; i++)
        {
            var others = teacherChunks.Where((_, j) => j != i).ToArray();
            var term = CrossEntropy(new[] { studentGlobalChunks[i] }, others);
            global = global is null ? term : global.Plus(term);
        }
        var globalLoss = global!.DividedBy(pairs);
        return new DinoLossTerms(localLoss.MoveToOuterDisposeScope(), globalLoss.MoveToOuterDisposeScope());
    }

    private void CheckScores(Tensor scores, string name)
    {
        ArgumentNullException.ThrowIfNull(scores, name);
        if (scores.dim() != 2 || scores.shape[1] != OutDim)
            throw new ArgumentException($"must be [samples, {OutDim}], got shape [{string.Join(", ", scores.shape)}]", name);
    }
}
