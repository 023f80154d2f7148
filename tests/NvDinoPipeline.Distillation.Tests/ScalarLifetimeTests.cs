using NvDinoPipeline.Training.Core;
using NvDinoPipeline.Testing;
using static TorchSharp.torch;

namespace NvDinoPipeline.Distillation.Tests;

/// <summary>Distillation trains like the SSL trainer and must pass its numbers to libtorch the same safe way (HeldScalars).</summary>
public sealed class ScalarLifetimeTests
{
    [Fact]
    public void Distillation_hands_libtorch_no_number_that_a_garbage_collection_can_free_mid_call()
    {
        var offenders = ScalarLifetime.UnheldScalarCalls(typeof(Tensor).Assembly, typeof(DistillationTrainer).Assembly);

        Assert.True(offenders.Count == 0, $"{offenders.Count} calls create a Scalar that only a finalizer frees:\n{string.Join("\n", offenders)}");
    }
}
