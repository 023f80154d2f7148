using NvDinoPipeline.Ssl.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class IbotPatchLossTests
{
    private static readonly System.Text.Json.JsonElement Ibot = Fixture.Load("losses.json").GetProperty("ibot");

    [Fact]
    public void Masked_loss_with_softmax_centering_matches_DINOv2_forward_masked()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(Ibot.GetProperty("K").GetInt64());
        var masks = Fixture.ToTensor(Ibot.GetProperty("masks"));
        var targets1 = loss.TeacherTargets(Fixture.ToTensor(Ibot.GetProperty("teacher_masked1")), Fixture.Number(Ibot, "teacher_temp1"), TeacherCentering.Softmax);
        Fixture.AssertClose(Ibot.GetProperty("softmax_probs1"), targets1);

        var weights = Fixture.ToTensor(Ibot.GetProperty("masks_weight"));
        var value = loss.ForwardMasked(Fixture.ToTensor(Ibot.GetProperty("student_masked")), targets1, masks, weights);
        Fixture.AssertClose(Fixture.Number(Ibot, "loss1"), value);

        var targets2 = loss.TeacherTargets(Fixture.ToTensor(Ibot.GetProperty("teacher_masked2")), Fixture.Number(Ibot, "teacher_temp2"), TeacherCentering.Softmax);
        Fixture.AssertClose(Ibot.GetProperty("softmax_probs2"), targets2);
        Fixture.AssertClose(Ibot.GetProperty("center_after_two"), loss.Center);
    }

    [Fact]
    public void Weights_default_to_one_over_the_masked_patches_of_each_image()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(Ibot.GetProperty("K").GetInt64());
        var masks = Fixture.ToTensor(Ibot.GetProperty("masks"));
        Fixture.AssertClose(Ibot.GetProperty("masks_weight"), IbotPatchLoss.MaskWeights(masks));
        var value = loss.ForwardMasked(Fixture.ToTensor(Ibot.GetProperty("student_masked")), Fixture.ToTensor(Ibot.GetProperty("softmax_probs1")), masks);
        Fixture.AssertClose(Fixture.Number(Ibot, "loss_default_weights"), value);
    }

    [Fact]
    public void Sinkhorn_Knopp_over_masked_patches_matches_DINOv2()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(Ibot.GetProperty("K").GetInt64());
        var targets = loss.TeacherTargets(Fixture.ToTensor(Ibot.GetProperty("teacher_masked1")), Fixture.Number(Ibot, "teacher_temp1"), TeacherCentering.SinkhornKnopp);
        Fixture.AssertClose(Ibot.GetProperty("sinkhorn_probs"), targets);
        var value = loss.ForwardMasked(Fixture.ToTensor(Ibot.GetProperty("student_masked")), targets, Fixture.ToTensor(Ibot.GetProperty("masks")));
        Fixture.AssertClose(Fixture.Number(Ibot, "sinkhorn_loss"), value);
        Assert.Equal(0.0, loss.Center.abs().sum().item<float>());
    }

    [Fact]
    public void Dense_loss_averages_masked_patches_per_image_as_DINOv2_forward()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(Ibot.GetProperty("K").GetInt64());
        var value = loss.Forward(Fixture.ToTensor(Ibot.GetProperty("student_dense")), Fixture.ToTensor(Ibot.GetProperty("teacher_dense")), Fixture.ToTensor(Ibot.GetProperty("masks")));
        Fixture.AssertClose(Fixture.Number(Ibot, "dense_loss"), value);
    }

    [Fact]
    public void Rejects_masks_that_are_not_boolean()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(4);
        var ex = Assert.Throws<ArgumentException>(() => loss.ForwardMasked(torch.randn(3, 4), torch.randn(3, 4).softmax(-1), torch.ones(2, 5)));
        Assert.Equal("masks", ex.ParamName);
    }

    [Fact]
    public void Rejects_a_weight_count_that_differs_from_the_masked_patches()
    {
        using var scope = torch.NewDisposeScope();
        using var loss = new IbotPatchLoss(4);
        var masks = torch.tensor(new[] { true, true, false, true }).view(2, 2);
        var ex = Assert.Throws<ArgumentException>(() => loss.ForwardMasked(torch.randn(3, 4), torch.randn(3, 4).softmax(-1), masks, torch.ones(2)));
        Assert.Equal("masksWeight", ex.ParamName);
    }
}
