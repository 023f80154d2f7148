using NvDinoPipeline.Ssl.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class DinoHeadTests
{
    private static readonly System.Text.Json.JsonElement Head = Fixture.Load("head.json");

    private static DinoHead FixtureHead()
    {
        var head = new DinoHead(
            Head.GetProperty("in_dim").GetInt64(),
            Head.GetProperty("out_dim").GetInt64(),
            Head.GetProperty("nlayers").GetInt32(),
            Head.GetProperty("hidden_dim").GetInt64(),
            Head.GetProperty("bottleneck_dim").GetInt64());
        var state = head.state_dict();
        using var noGrad = torch.no_grad();
        foreach (var entry in Head.GetProperty("state").EnumerateObject())
        {
            Assert.True(state.ContainsKey(entry.Name), $"no parameter {entry.Name}");
            using var value = Fixture.ToTensor(entry.Value);
            state[entry.Name].copy_(value);
        }
        return head;
    }

    [Fact]
    public void Forward_with_fixed_weights_matches_DINOv2_head()
    {
        using var scope = torch.NewDisposeScope();
        using var head = FixtureHead();
        var y = head.forward(Fixture.ToTensor(Head.GetProperty("x")));
        Fixture.AssertClose(Head.GetProperty("y"), y);
    }

    [Fact]
    public void Parameter_names_are_DINOv2_checkpoint_keys()
    {
        using var head = new DinoHead(6, 7, nLayers: 3, hiddenDim: 8, bottleneckDim: 5);
        var expected = Head.GetProperty("state").EnumerateObject().Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal);
        Assert.Equal(expected, head.state_dict().Keys.OrderBy(n => n, StringComparer.Ordinal));
    }

    [Fact]
    public void Prototypes_are_unit_vectors_and_their_magnitude_does_not_train()
    {
        using var scope = torch.NewDisposeScope();
        using var head = new DinoHead(6, 7, nLayers: 3, hiddenDim: 8, bottleneckDim: 5);
        var norms = head.LastLayer.Weight().norm(1);
        Assert.True(norms.allclose(torch.ones(7), rtol: 0, atol: 1e-5));

        var named = head.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.False(named["last_layer.weight_g"].requires_grad);
        head.forward(torch.randn(3, 6)).sum().backward();
        Assert.NotNull(named["last_layer.weight_v"].grad);
        Assert.NotNull(named["mlp.0.weight"].grad);
        Assert.Null(named["last_layer.weight_g"].grad);
    }

    [Fact]
    public void Outputs_one_score_per_prototype_for_each_token()
    {
        using var scope = torch.NewDisposeScope();
        using var head = new DinoHead(12, 33, hiddenDim: 16, bottleneckDim: 8);
        Assert.Equal(new long[] { 5, 33 }, head.forward(torch.randn(5, 12)).shape);
        // A unit bottleneck times unit prototypes: every score is a cosine.
        Assert.True(head.forward(torch.randn(5, 12)).abs().max().item<float>() <= 1.0f + 1e-5f);
    }

    [Fact]
    public void Mlp_weights_start_small_and_biases_at_zero()
    {
        using var head = new DinoHead(64, 10, hiddenDim: 256, bottleneckDim: 32);
        var named = head.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.InRange(named["mlp.0.weight"].std().item<float>(), 0.015f, 0.025f);
        Assert.True(named["mlp.0.weight"].abs().max().item<float>() <= 2.0f);
        Assert.Equal(0.0f, named["mlp.2.bias"].abs().sum().item<float>());
    }

    [Fact]
    public void Works_in_bfloat16_and_feeds_the_float32_losses()
    {
        using var scope = torch.NewDisposeScope();
        using var head = new DinoHead(12, 16, hiddenDim: 16, bottleneckDim: 8);
        var x = torch.randn(4, 12);
        var reference = head.forward(x);
        head.to(ScalarType.BFloat16);
        var scores = head.forward(x.to(ScalarType.BFloat16));
        Assert.Equal(ScalarType.BFloat16, scores.dtype);
        Assert.True(scores.to(ScalarType.Float32).allclose(reference, rtol: 0, atol: 0.05));
        using var loss = new NvDinoPipeline.Ssl.Losses.DinoLoss(16);
        var targets = loss.TeacherTargets(scores, 0.04, NvDinoPipeline.Ssl.Losses.TeacherCentering.Softmax);
        var value = loss.MultiCropLoss(scores, null, targets).Total();
        Assert.Equal(ScalarType.Float32, value.dtype);
        Assert.True(float.IsFinite(value.item<float>()));
    }

    [Fact]
    public void Rejects_a_non_positive_prototype_count()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new DinoHead(8, 0));
        Assert.Equal("outDim", ex.ParamName);
    }
}
