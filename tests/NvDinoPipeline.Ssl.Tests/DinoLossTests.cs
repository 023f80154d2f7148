using NvDinoPipeline.Ssl.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class DinoLossTests
{
    private static readonly System.Text.Json.JsonElement Dino = Fixture.Load("losses.json").GetProperty("dino");

    [Fact]
    public void Softmax_centering_targets_losses_and_center_match_DINOv2_over_two_iterations()
    {
        using var scope = torch.NewDisposeScope();
        var k = Dino.GetProperty("K").GetInt64();
        using var loss = new DinoLoss(k, studentTemp: 0.1, centerMomentum: 0.9);
        var studentGlobal = Fixture.ToTensor(Dino.GetProperty("student_global"));
        var studentLocal = Fixture.ToTensor(Dino.GetProperty("student_local"));

        var targets1 = loss.TeacherTargets(Fixture.ToTensor(Dino.GetProperty("teacher1")), Fixture.Number(Dino, "teacher_temp1"), TeacherCentering.Softmax);
        Fixture.AssertClose(Dino.GetProperty("softmax_probs1"), targets1);
        var terms1 = loss.MultiCropLoss(studentGlobal, studentLocal, targets1);
        Fixture.AssertClose(Fixture.Number(Dino, "softmax_local1"), terms1.LocalCrops);
        Fixture.AssertClose(Fixture.Number(Dino, "softmax_global1"), terms1.GlobalCrops);

        var targets2 = loss.TeacherTargets(Fixture.ToTensor(Dino.GetProperty("teacher2")), Fixture.Number(Dino, "teacher_temp2"), TeacherCentering.Softmax);
        Fixture.AssertClose(Dino.GetProperty("softmax_probs2"), targets2);
        var terms2 = loss.MultiCropLoss(studentGlobal, studentLocal, targets2);
        Fixture.AssertClose(Fixture.Number(Dino, "softmax_local2"), terms2.LocalCrops);
        Fixture.AssertClose(Fixture.Number(Dino, "softmax_global2"), terms2.GlobalCrops);
        Fixture.AssertClose(Fixture.Number(Dino, "softmax_local2") + Fixture.Number(Dino, "softmax_global2"), terms2.Total());

        Fixture.AssertClose(Dino.GetProperty("center_after_two"), loss.Center);
    }

    [Fact]
    public void Sinkhorn_Knopp_targets_and_losses_match_DINOv2_and_leave_the_center_alone()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new DinoLoss(Dino.GetProperty("K").GetInt64());
        var targets = loss.TeacherTargets(Fixture.ToTensor(Dino.GetProperty("teacher1")), Fixture.Number(Dino, "teacher_temp1"), TeacherCentering.SinkhornKnopp);
        Fixture.AssertClose(Dino.GetProperty("sinkhorn_probs"), targets);

        var terms = loss.MultiCropLoss(Fixture.ToTensor(Dino.GetProperty("student_global")), Fixture.ToTensor(Dino.GetProperty("student_local")), targets);
        Fixture.AssertClose(Fixture.Number(Dino, "sinkhorn_local"), terms.LocalCrops);
        Fixture.AssertClose(Fixture.Number(Dino, "sinkhorn_global"), terms.GlobalCrops);
        Assert.Equal(0.0, loss.Center.abs().sum().item<float>());
    }

    [Fact]
    public void Sinkhorn_Knopp_targets_are_distributions_that_use_prototypes_evenly()
    {
        using var scope = torch.NewDisposeScope();
        var scores = torch.randn(32, 8, generator: new Generator(3));
        var targets = SinkhornKnopp.Normalize(scores, 0.5, iterations: 50);
        var rowSums = targets.sum(dim: 1);
        Assert.True(rowSums.allclose(torch.ones_like(rowSums), rtol: 0, atol: 1e-5));
        var prototypeMass = targets.sum(dim: 0);
        Assert.True(prototypeMass.allclose(torch.full_like(prototypeMass, 32.0 / 8), rtol: 0, atol: 1e-2), $"prototype mass {string.Join(", ", prototypeMass.data<float>().ToArray())}");

        // Three iterations already even out the prototypes far more than a plain softmax does.
        var spreadSoftmax = (scores / 0.5).softmax(-1).sum(dim: 0).std().item<float>();
        var spreadSinkhorn = SinkhornKnopp.Normalize(scores, 0.5).sum(dim: 0).std().item<float>();
        Assert.True(spreadSinkhorn < 0.2f * spreadSoftmax, $"softmax spread {spreadSoftmax}, Sinkhorn spread {spreadSinkhorn}");
    }

    [Fact]
    public void Cross_entropy_pairs_every_student_chunk_with_every_teacher_chunk()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new DinoLoss(Dino.GetProperty("K").GetInt64());
        var probs = Fixture.ToTensor(Dino.GetProperty("softmax_probs1"));
        var value = loss.CrossEntropy(Fixture.ToTensor(Dino.GetProperty("student_global")).chunk(2), probs.chunk(2));
        Fixture.AssertClose(Fixture.Number(Dino, "cross_entropy_global_chunks_vs_probs1_chunks"), value);
    }

    [Fact]
    public void Loss_backpropagates_to_the_student_only()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new DinoLoss(16);
        var student = torch.randn(4, 16).requires_grad_();
        var teacher = torch.randn(4, 16).requires_grad_();
        var targets = loss.TeacherTargets(teacher, 0.04, TeacherCentering.Softmax);
        loss.MultiCropLoss(student, null, targets).Total().backward();
        Assert.NotNull(student.grad);
        Assert.Null(teacher.grad);
        Assert.False(targets.requires_grad);
    }

    [Fact]
    public void Without_local_crops_the_local_term_is_zero_and_global_pairs_are_not_divided_by_local_ones()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new DinoLoss(16);
        var student = torch.randn(6, 16);
        var targets = torch.randn(6, 16).softmax(-1);
        var terms = loss.MultiCropLoss(student, null, targets);
        Assert.Equal(0.0, terms.LocalCrops.item<float>());
        // DINOv2 divides by nG·(nG−1) + max(nG·nL, 1) = 2 + 1 when there are no local crops.
        var expected = loss.CrossEntropy(new[] { student.chunk(2)[0] }, new[] { targets.chunk(2)[1] })
            + loss.CrossEntropy(new[] { student.chunk(2)[1] }, new[] { targets.chunk(2)[0] });
        Fixture.AssertClose((expected / 3).item<float>(), terms.GlobalCrops);
    }

    [Fact]
    public void Center_is_saved_in_the_state_dict()
    {
        using var loss = new DinoLoss(5);
        Assert.Contains("center", loss.state_dict().Keys);
    }

    [Fact]
    public void Rejects_scores_with_the_wrong_number_of_prototypes()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new DinoLoss(16);
        var ex = Assert.Throws<ArgumentException>(() => loss.TeacherTargets(torch.randn(4, 15), 0.04, TeacherCentering.Softmax));
        Assert.Equal("teacherOutput", ex.ParamName);
        Assert.Contains("16", ex.Message);
    }
}
