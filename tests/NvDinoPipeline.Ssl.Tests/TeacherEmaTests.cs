using NvDinoPipeline.Ssl.Teacher;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class TeacherEmaTests
{
    [Fact]
    public void Teacher_moves_towards_the_student_by_one_minus_momentum()
    {
        using var scope = torch.NewDisposeScope();
        using var teacher = nn.Linear(3, 2);
        using var student = nn.Linear(3, 2);
        var t0 = teacher.weight!.clone();
        var s0 = student.weight!.clone();
        TeacherEma.Update(teacher, student, 0.9);
        Assert.True(teacher.weight!.allclose(0.9 * t0 + 0.1 * s0, rtol: 0, atol: 1e-7));
        Assert.True(student.weight!.SameAs(s0));
    }

    [Fact]
    public void Momentum_one_keeps_the_teacher_and_copy_makes_it_the_student()
    {
        using var scope = torch.NewDisposeScope();
        using var teacher = nn.Linear(3, 2);
        using var student = nn.Linear(3, 2);
        var t0 = teacher.weight!.clone();
        TeacherEma.Update(teacher, student, 1.0);
        Assert.True(teacher.weight!.SameAs(t0));
        TeacherEma.CopyFrom(teacher, student);
        Assert.True(teacher.weight!.SameAs(student.weight!));
        Assert.True(teacher.bias!.SameAs(student.bias!));
    }

    [Fact]
    public void Rejects_a_student_of_another_shape_before_changing_anything()
    {
        using var scope = torch.NewDisposeScope();
        using var teacher = nn.Linear(3, 2);
        using var student = nn.Linear(3, 4);
        var t0 = teacher.weight!.clone();
        var ex = Assert.Throws<ArgumentException>(() => TeacherEma.Update(teacher, student, 0.5));
        Assert.Contains("weight", ex.Message);
        Assert.True(teacher.weight!.SameAs(t0));
    }
}
