using NvDinoPipeline.Ssl.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class KoLeoLossTests
{
    private static readonly System.Text.Json.JsonElement Koleo = Fixture.Load("losses.json").GetProperty("koleo");

    [Fact]
    public void Matches_DINOv2_on_a_small_batch()
    {
        using var scope = torch.NewDisposeScope();
        Fixture.AssertClose(Fixture.Number(Koleo, "loss"), KoLeoLoss.Compute(Fixture.ToTensor(Koleo.GetProperty("x"))));
    }

    [Fact]
    public void Matches_DINOv2_when_two_features_point_the_same_way()
    {
        using var scope = torch.NewDisposeScope();
        var value = KoLeoLoss.Compute(Fixture.ToTensor(Koleo.GetProperty("x_dup")));
        Assert.True(float.IsFinite(value.item<float>()));
        Fixture.AssertClose(Fixture.Number(Koleo, "loss_dup"), value, 1e-4);
    }

    [Fact]
    public void Batch_of_one_gives_zero_instead_of_NaN()
    {
        using var scope = torch.NewDisposeScope();
        var features = torch.randn(1, 8).requires_grad_();
        var value = KoLeoLoss.Compute(features);
        Assert.Equal(0.0f, value.item<float>());
    }

    [Fact]
    public void Gradient_spreads_close_features_apart()
    {
        using var scope = torch.NewDisposeScope();
        var features = torch.tensor(new float[] { 1, 0, 0.99f, 0.14f, -1, 0.2f }).view(3, 2).requires_grad_();
        KoLeoLoss.Compute(features).backward();
        var grad = features.grad!;
        Assert.False(grad.isnan().any().item<bool>());
        // A gradient step moves the two nearly parallel vectors apart.
        using var noGrad = torch.no_grad();
        var moved = nn.functional.normalize(features - 0.1 * grad, p: 2, dim: -1);
        var before = nn.functional.normalize(features, p: 2, dim: -1);
        Assert.True((moved[0] - moved[1]).norm().item<float>() > (before[0] - before[1]).norm().item<float>());
    }

    [Fact]
    public void Global_crops_are_regularised_separately_and_summed()
    {
        using var scope = torch.NewDisposeScope();
        var crop0 = torch.randn(4, 6, generator: new Generator(1));
        var crop1 = crop0 + 1e-3f * torch.randn(4, 6, generator: new Generator(2));
        var value = KoLeoLoss.PerGlobalCrop(torch.cat(new[] { crop0, crop1 }), globalCrops: 2);
        // Views of the same image are nearly identical; pairing across crops would explode the loss.
        var expected = KoLeoLoss.Compute(crop0) + KoLeoLoss.Compute(crop1);
        Fixture.AssertClose(expected.item<float>(), value);
    }

    [Fact]
    public void Rejects_features_that_are_not_a_matrix()
    {
        using var scope = torch.NewDisposeScope();
        var ex = Assert.Throws<ArgumentException>(() => KoLeoLoss.Compute(torch.randn(8)));
        Assert.Equal("studentOutput", ex.ParamName);
    }
}
