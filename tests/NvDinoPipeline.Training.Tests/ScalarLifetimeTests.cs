using NvDinoPipeline.Model;
using NvDinoPipeline.Ssl.Augmentation;
using NvDinoPipeline.Testing;
using NvDinoPipeline.Training.Core;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Tests;

/// <summary>
/// A TorchSharp Scalar made from a number on the way into a call (an operator such as <c>x * 0.5</c> or <c>a + b</c>, an
/// implicit conversion, TorchSharp's own <c>AdamW.step</c>) is unreachable while libtorch runs, and a garbage collection
/// started by another thread frees it mid-call: long training runs crashed or failed that way (benchmarks/Training/RESULTS.md).
/// Training code must pass numbers through <see cref="HeldScalars"/>, which holds them until the call returns.
/// </summary>
public sealed class ScalarLifetimeTests
{
    private static readonly System.Reflection.Assembly[] TrainingCode = [typeof(HeldScalars).Assembly, typeof(ImageOps).Assembly, typeof(SslTrainer).Assembly];

    [Fact]
    public void Training_code_hands_libtorch_no_number_that_a_garbage_collection_can_free_mid_call()
    {
        var offenders = ScalarLifetime.UnheldScalarCalls(typeof(Tensor).Assembly, TrainingCode);

        Assert.True(offenders.Count == 0, $"{offenders.Count} calls create a Scalar that only a finalizer frees:\n{string.Join("\n", offenders)}");
    }

    [Fact]
    public void Held_scalar_arithmetic_computes_what_TorchSharps_operators_compute()
    {
        using var scope = NewDisposeScope();
        var x = linspace(-3, 3, 25);
        var y = cos(x);
        Assert.True(Same(x.Plus(y), x + y));
        Assert.True(Same(x.Times(0.3), x * 0.3));
        Assert.True(Same(x.DividedBy(7.0), x / 7.0));
        Assert.True(Same(x.SubtractedFrom(1.0), 1.0 - x));
        Assert.True(Same(x.Clamped(-1.0, 2.0), x.clamp(-1.0, 2.0)));
        Assert.True(Same(x.Remainder(1.0), x.remainder(1.0)));
        var integers = arange(0L, 20L);
        Assert.Equal(ScalarType.Int64, integers.Remainder(6).dtype);
        Assert.True(Same(integers.Remainder(6), integers.remainder(6)));
        Assert.True(Same(x.clone().TimesInPlace(0.9).PlusInPlace(y, 0.1), x.clone().mul_(0.9).add_(y, alpha: 0.1)));
    }

    private static bool Same(Tensor a, Tensor b) => a.dtype == b.dtype && a.allclose(b, rtol: 0, atol: 0);
}
