using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Losses;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

/// <summary>
/// The teacher side of data-parallel replicas: targets and center updates from every replica's scores are those of the
/// scores of all replicas together, which is what DINOv2's all-reduces compute across ranks.
/// </summary>
public sealed class ReplicaLossTests
{
    private const int K = 16;

    private static Tensor[] Parts(params long[] rows)
    {
        var generator = new torch.Generator(3);
        return rows.Select(n => torch.randn([n, K], generator: generator)).ToArray();
    }

    [Theory]
    [InlineData(TeacherCentering.Softmax)]
    [InlineData(TeacherCentering.SinkhornKnopp)]
    public void Dino_targets_and_center_over_replicas_equal_those_of_all_rows_together(TeacherCentering centering)
    {
        using var scope = torch.NewDisposeScope();
        var parts = Parts(4, 4, 4);
        using var together = new DinoLoss(K);
        using var replicas = new DinoLoss(K);
        for (var step = 0; step < 2; step++)
        {
            var expected = together.TeacherTargets(torch.cat(parts), 0.1, centering).split(4);
            var actual = replicas.TeacherTargets(parts, 0.1, centering);
            for (var r = 0; r < parts.Length; r++)
                Assert.True(actual[r].allclose(expected[r], rtol: 1e-5, atol: 1e-7), $"step {step}, replica {r}: differs by {(actual[r] - expected[r]).abs().max().item<float>():G3} of {expected[r].abs().max().item<float>():G3}");
            Assert.True(replicas.Center.allclose(together.Center, rtol: 1e-5, atol: 1e-7), $"step {step}: center");
        }
        Assert.Equal(centering == TeacherCentering.Softmax, together.Center.abs().max().item<float>() > 0);
    }

    [Theory]
    [InlineData(TeacherCentering.Softmax)]
    [InlineData(TeacherCentering.SinkhornKnopp)]
    public void Ibot_targets_and_center_over_replicas_with_unequal_masked_patches_equal_those_of_all_patches(TeacherCentering centering)
    {
        using var scope = torch.NewDisposeScope();
        var parts = Parts(5, 0, 2);
        using var together = new IbotPatchLoss(K);
        using var replicas = new IbotPatchLoss(K);
        var expected = together.TeacherTargets(torch.cat(parts), 0.1, centering).split([5, 0, 2]);
        var actual = replicas.TeacherTargets(parts, 0.1, centering);
        for (var r = 0; r < parts.Length; r++)
        {
            Assert.Equal(expected[r].shape, actual[r].shape);
            Assert.True(actual[r].allclose(expected[r], rtol: 1e-5, atol: 1e-7), $"replica {r}");
        }
        Assert.True(replicas.Center.allclose(together.Center, rtol: 1e-5, atol: 1e-7), "center");
    }
}
