using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Teacher;

/// <summary>
/// The teacher as an exponential moving average of the student (DINO's momentum encoder;
/// DINOv2 <c>SSLMetaArch.update_teacher</c>): θ_t ← m·θ_t + (1 − m)·θ_s for every parameter.
/// </summary>
public static class TeacherEma
{
    /// <summary>Updates the teacher's parameters in place, pairing them with the student's by name.</summary>
    /// <param name="teacher">The teacher (backbone or head).</param>
    /// <param name="student">The student with the same architecture.</param>
    /// <param name="momentum">m in [0, 1]; 1 leaves the teacher unchanged, 0 copies the student.</param>
    public static void Update(nn.Module teacher, nn.Module student, double momentum)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(student);
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "must be in [0, 1]");

        using var noGrad = torch.no_grad();
        foreach (var (t, s) in Pair(teacher, student))
            t.TimesInPlace(momentum).PlusInPlace(s, 1 - momentum);
    }

    /// <summary>Copies the student's parameters into the teacher (the teacher's initial state).</summary>
    public static void CopyFrom(nn.Module teacher, nn.Module student)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(student);
        using var noGrad = torch.no_grad();
        foreach (var (t, s) in Pair(teacher, student))
            t.copy_(s);
    }

    private static List<(Tensor Teacher, Tensor Student)> Pair(nn.Module teacher, nn.Module student)
    {
        var pairs = new List<(Tensor Teacher, Tensor Student)>();
        var studentParameters = student.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var teacherParameters = teacher.named_parameters().ToList();
        if (teacherParameters.Count != studentParameters.Count)
            throw new ArgumentException($"teacher has {teacherParameters.Count} parameters, student {studentParameters.Count}", nameof(student));
        foreach (var (name, t) in teacherParameters)
        {
            if (!studentParameters.TryGetValue(name, out var s))
                throw new ArgumentException($"student has no parameter '{name}'", nameof(student));
            if (!t.shape.SequenceEqual(s.shape))
                throw new ArgumentException($"parameter '{name}' is [{string.Join(", ", t.shape)}] in the teacher and [{string.Join(", ", s.shape)}] in the student", nameof(student));
            pairs.Add((t, s));
        }
        return pairs;
    }
}
