using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

public sealed class TensorInitTests
{
    [Fact]
    public void Truncated_normal_has_the_requested_spread_within_the_bounds()
    {
        using var scope = torch.NewDisposeScope();
        var weights = TensorInit.TruncNormal_(torch.empty(200, 200), std: 0.02, generator: new Generator(1));
        Assert.InRange(weights.std().item<float>(), 0.019f, 0.021f);
        Assert.InRange(weights.mean().item<float>(), -0.001f, 0.001f);

        var clipped = TensorInit.TruncNormal_(torch.empty(10000), std: 1.0, a: -0.5, b: 0.5);
        Assert.True(clipped.abs().max().item<float>() <= 0.5f);
        Assert.True(clipped.std().item<float>() > 0.25f);
    }
}
