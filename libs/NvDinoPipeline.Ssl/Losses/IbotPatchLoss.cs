using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>
/// iBOT masked-patch loss (Zhou et al. 2022; DINOv2 <c>loss/ibot_patch_loss.py</c>): the student sees
/// the global crops with masked patches and predicts, for each masked patch, the teacher's
/// distribution for the unmasked patch. Each image's masked patches share a total weight of 1, so
/// images with many masked patches do not dominate. Holds its own running <c>center</c> [1, 1, K].
/// In the multi-crop objective DINOv2 scales this loss by 2 (both global crops together) and by 1/2
/// (<c>ibot_loss_scale</c>), i.e. <see cref="ForwardMasked"/> is used as is.
/// </summary>
public sealed class IbotPatchLoss : nn.Module
{
    public IbotPatchLoss(long patchOutDim, double studentTemp = 0.1, double centerMomentum = 0.9) : base(nameof(IbotPatchLoss))
    {
        if (patchOutDim <= 0) throw new ArgumentOutOfRangeException(nameof(patchOutDim), patchOutDim, "must be positive (the number of prototypes)");
        if (!(studentTemp > 0)) throw new ArgumentOutOfRangeException(nameof(studentTemp), studentTemp, "must be positive");
        if (!(centerMomentum >= 0 && centerMomentum <= 1)) throw new ArgumentOutOfRangeException(nameof(centerMomentum), centerMomentum, "must be in [0, 1]");
        PatchOutDim = patchOutDim;
        StudentTemp = studentTemp;
        CenterMomentum = centerMomentum;
        register_buffer("center", torch.zeros(1, 1, patchOutDim));
    }

    public long PatchOutDim { get; }

    public double StudentTemp { get; }

    public double CenterMomentum { get; }

    /// <summary>The running mean of masked teacher patch outputs [1, 1, K].</summary>
    public Tensor Center => get_buffer("center")!;

    /// <summary>softmax((teacher − center) / teacherTemp) for masked teacher patch scores [M, K] or [B, N, K].</summary>
    public Tensor SoftmaxCenterTeacher(Tensor teacherPatchTokens, double teacherTemp)
    {
        CheckLastDim(teacherPatchTokens, nameof(teacherPatchTokens));
        if (!(teacherTemp > 0)) throw new ArgumentOutOfRangeException(nameof(teacherTemp), teacherTemp, "must be positive");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var center = Center.to(teacherPatchTokens.device).view(-1);
        var centered = teacherPatchTokens.to(ScalarType.Float32) - center;
        return centered.DividedBy(teacherTemp).softmax(-1).MoveToOuterDisposeScope();
    }

    /// <summary>center ← m·center + (1 − m)·mean of the masked teacher patch scores [M, K].</summary>
    public void UpdateCenter(Tensor maskedTeacherPatchTokens)
    {
        CheckMasked(maskedTeacherPatchTokens, nameof(maskedTeacherPatchTokens));
        if (maskedTeacherPatchTokens.shape[0] == 0)
            throw new ArgumentException("has no masked patches; the center is a mean over masked patches", nameof(maskedTeacherPatchTokens));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var center = Center;
        var batchCenter = maskedTeacherPatchTokens.to(ScalarType.Float32).to(center.device).mean(new long[] { 0 }).view(1, 1, -1);
        center.TimesInPlace(CenterMomentum).PlusInPlace(batchCenter, 1 - CenterMomentum);
    }

    /// <summary>
    /// center ← m·center + (1 − m)·mean over the masked patches of every part (the data-parallel replicas' masked teacher
    /// patch scores of one step, on any devices). DINOv2 all-reduces the sum and divides by its own rank's count times
    /// the number of ranks, which is this mean when every rank masks as many patches; the mean over all patches is what
    /// one replica on the whole batch computes.
    /// </summary>
    public void UpdateCenter(IReadOnlyList<Tensor> maskedTeacherPatchTokens)
    {
        ArgumentNullException.ThrowIfNull(maskedTeacherPatchTokens);
        if (maskedTeacherPatchTokens.Count == 1)
        {
            UpdateCenter(maskedTeacherPatchTokens[0]);
            return;
        }
        foreach (var part in maskedTeacherPatchTokens)
            CheckMasked(part, nameof(maskedTeacherPatchTokens));
        if (maskedTeacherPatchTokens.Sum(part => part.shape[0]) == 0)
            throw new ArgumentException("has no masked patches; the center is a mean over masked patches", nameof(maskedTeacherPatchTokens));
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var center = Center;
        var batchCenter = ReplicaSums.MeanOverRows(maskedTeacherPatchTokens, center.device).view(1, 1, -1);
        center.TimesInPlace(CenterMomentum).PlusInPlace(batchCenter, 1 - CenterMomentum);
    }

    /// <summary>
    /// Teacher targets for the masked patch scores of every data-parallel replica of one step, as
    /// <see cref="TeacherTargets(Tensor, double, TeacherCentering, int)"/> on all their patches together (DINOv2's
    /// all-reduced center update and Sinkhorn-Knopp sums). A part may hold no patches.
    /// </summary>
    public Tensor[] TeacherTargets(IReadOnlyList<Tensor> maskedTeacherPatchTokens, double teacherTemp, TeacherCentering centering, int sinkhornIterations = 3)
    {
        ArgumentNullException.ThrowIfNull(maskedTeacherPatchTokens);
        if (maskedTeacherPatchTokens.Count == 1)
            return [TeacherTargets(maskedTeacherPatchTokens[0], teacherTemp, centering, sinkhornIterations)];
        foreach (var part in maskedTeacherPatchTokens)
            CheckMasked(part, nameof(maskedTeacherPatchTokens));
        switch (centering)
        {
            case TeacherCentering.Softmax:
                var targets = maskedTeacherPatchTokens.Select(part => SoftmaxCenterTeacher(part, teacherTemp)).ToArray();
                UpdateCenter(maskedTeacherPatchTokens);
                return targets;
            case TeacherCentering.SinkhornKnopp:
                return SinkhornKnopp.Normalize(maskedTeacherPatchTokens, teacherTemp, sinkhornIterations);
            default:
                throw new ArgumentOutOfRangeException(nameof(centering), centering, "unknown teacher centering");
        }
    }

    /// <summary>
    /// Teacher targets [M, K] for masked teacher patch scores [M, K]. With <see cref="TeacherCentering.Softmax"/>
    /// the center is used and then updated; Sinkhorn-Knopp normalises over the M masked patches.
    /// </summary>
    public Tensor TeacherTargets(Tensor maskedTeacherPatchTokens, double teacherTemp, TeacherCentering centering, int sinkhornIterations = 3)
    {
        CheckMasked(maskedTeacherPatchTokens, nameof(maskedTeacherPatchTokens));
        switch (centering)
        {
            case TeacherCentering.Softmax:
                var targets = SoftmaxCenterTeacher(maskedTeacherPatchTokens, teacherTemp);
                UpdateCenter(maskedTeacherPatchTokens);
                return targets;
            case TeacherCentering.SinkhornKnopp:
                return SinkhornKnopp.Normalize(maskedTeacherPatchTokens, teacherTemp, sinkhornIterations);
            default:
                throw new ArgumentOutOfRangeException(nameof(centering), centering, "unknown teacher centering");
        }
    }

    /// <summary>
    /// DINOv2's <c>forward_masked</c>: −Σ_m w_m Σ_k t·log softmax(s / student_temp) / B, where the sum runs
    /// over the M masked patches of the batch and w_m = 1 / (masked patches in that patch's image).
    /// </summary>
    /// <param name="studentMaskedTokens">Student head outputs for the masked patches [M, K], in the order of <c>masks.flatten().nonzero()</c>.</param>
    /// <param name="teacherMaskedTargets">Teacher targets for the same patches [M, K].</param>
    /// <param name="masks">The boolean masks [B, N] (B = all global crops of the batch).</param>
    /// <param name="masksWeight">Per-patch weights [M]; computed from <paramref name="masks"/> when null.</param>
    public Tensor ForwardMasked(Tensor studentMaskedTokens, Tensor teacherMaskedTargets, Tensor masks, Tensor? masksWeight = null)
    {
        CheckMasked(studentMaskedTokens, nameof(studentMaskedTokens));
        CheckMasked(teacherMaskedTargets, nameof(teacherMaskedTargets));
        ArgumentNullException.ThrowIfNull(masks);
        if (masks.dim() != 2 || masks.dtype != ScalarType.Bool)
            throw new ArgumentException($"must be a bool tensor [samples, patches], got {masks.dtype} [{string.Join(", ", masks.shape)}]", nameof(masks));
        if (!studentMaskedTokens.shape.SequenceEqual(teacherMaskedTargets.shape))
            throw new ArgumentException($"shape [{string.Join(", ", teacherMaskedTargets.shape)}] differs from the student's [{string.Join(", ", studentMaskedTokens.shape)}]", nameof(teacherMaskedTargets));

        using var scope = torch.NewDisposeScope();
        var weights = masksWeight ?? MaskWeights(masks);
        if (weights.shape.Length != 1 || weights.shape[0] != studentMaskedTokens.shape[0])
            throw new ArgumentException($"must hold one weight per masked patch ({studentMaskedTokens.shape[0]}), got shape [{string.Join(", ", weights.shape)}]", nameof(masksWeight));
        var loss = PatchCrossEntropy(teacherMaskedTargets, studentMaskedTokens);
        var total = (-(loss * weights.to(loss.device)).sum()).DividedBy(masks.shape[0]);
        return total.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// DINOv2's dense <c>forward</c>: per image, the mean over its masked patches of the cross-entropy,
    /// then the mean over images. Inputs are [B, N, K] and masks [B, N].
    /// </summary>
    public Tensor Forward(Tensor studentPatchTokens, Tensor teacherPatchTargets, Tensor masks)
    {
        CheckLastDim(studentPatchTokens, nameof(studentPatchTokens));
        CheckLastDim(teacherPatchTargets, nameof(teacherPatchTargets));
        ArgumentNullException.ThrowIfNull(masks);
        if (studentPatchTokens.dim() != 3 || !studentPatchTokens.shape.SequenceEqual(teacherPatchTargets.shape))
            throw new ArgumentException($"student [{string.Join(", ", studentPatchTokens.shape)}] and teacher [{string.Join(", ", teacherPatchTargets.shape)}] must both be [B, N, K]", nameof(teacherPatchTargets));
        if (masks.dim() != 2 || masks.shape[0] != studentPatchTokens.shape[0] || masks.shape[1] != studentPatchTokens.shape[1])
            throw new ArgumentException($"must be [{studentPatchTokens.shape[0]}, {studentPatchTokens.shape[1]}], got [{string.Join(", ", masks.shape)}]", nameof(masks));

        using var scope = torch.NewDisposeScope();
        var loss = PatchCrossEntropy(teacherPatchTargets, studentPatchTokens);
        var m = masks.to(ScalarType.Float32);
        var perImage = (loss * m).sum(-1) / m.sum(-1).ClampedMin(1.0);
        return (-perImage.mean()).MoveToOuterDisposeScope();
    }

    /// <summary>Weight of each masked patch: 1 / (number of masked patches of its image), as [M].</summary>
    public static Tensor MaskWeights(Tensor masks)
    {
        ArgumentNullException.ThrowIfNull(masks);
        using var scope = torch.NewDisposeScope();
        var perImage = masks.sum(-1).to(ScalarType.Float32).ClampedMin(1.0).reciprocal();
        var expanded = perImage.unsqueeze(-1).expand_as(masks);
        return expanded.masked_select(masks).MoveToOuterDisposeScope();
    }

    private Tensor PatchCrossEntropy(Tensor teacher, Tensor student) =>
        (teacher * student.to(ScalarType.Float32).DividedBy(StudentTemp).log_softmax(-1)).sum(-1);

    private void CheckLastDim(Tensor tokens, string name)
    {
        ArgumentNullException.ThrowIfNull(tokens, name);
        if (tokens.dim() < 2 || tokens.shape[^1] != PatchOutDim)
            throw new ArgumentException($"last dimension must be {PatchOutDim}, got shape [{string.Join(", ", tokens.shape)}]", name);
    }

    private void CheckMasked(Tensor tokens, string name)
    {
        ArgumentNullException.ThrowIfNull(tokens, name);
        if (tokens.dim() != 2 || tokens.shape[1] != PatchOutDim)
            throw new ArgumentException($"must be [masked patches, {PatchOutDim}], got shape [{string.Join(", ", tokens.shape)}]", name);
    }
}
