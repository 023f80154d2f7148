using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model;

/// <summary>
/// Tensor arithmetic with plain numbers that cannot lose the number while libtorch reads it.
/// <para>
/// TorchSharp hands every number to libtorch as a <see cref="Scalar"/>, a managed object owning a native copy that
/// only its finalizer frees: <c>x * 0.5</c>, <c>x.clamp(0, 1)</c>, and also <c>x + y</c> (an implicit alpha of 1) each
/// create one and keep nothing but its raw pointer during the native call. A garbage collection started by another
/// thread during that call (a loader thread, a timer) finds the Scalar unreachable, and the finalizer thread frees the
/// native copy while libtorch may still be about to read it: garbage values, "Unknown scalar type" errors and, once in
/// a long run, corrupted memory. Each method here holds its Scalar until the call has returned, then frees it.
/// Use these instead of TorchSharp's operators and number overloads; <c>ScalarLifetimeTests</c> finds any that remain.
/// </para>
/// </summary>
public static class HeldScalars
{
    // Static, so never finalized: the alpha of 1 that TorchSharp's a + b passes.
    private static readonly Scalar One = 1.ToScalar();

    private static Tensor Held(double value, Func<Scalar, Tensor> operation)
    {
        using var scalar = value.ToScalar();
        return operation(scalar);
    }

    private static Tensor Held(double first, double second, Func<Scalar, Scalar, Tensor> operation)
    {
        using var a = first.ToScalar();
        using var b = second.ToScalar();
        return operation(a, b);
    }

    private static Tensor Held(long value, Func<Scalar, Tensor> operation)
    {
        using var scalar = value.ToScalar();
        return operation(scalar);
    }

    /// <summary>0, 1, …, count − 1 (torch.arange(count), which makes its start and step as unheld Scalars).</summary>
    public static Tensor Range(long count, ScalarType dtype, Device device)
    {
        using var start = 0.ToScalar();
        using var stop = count.ToScalar();
        using var step = 1.ToScalar();
        return torch.arange(start, stop, step, dtype, device);
    }

    /// <summary>a + b (TorchSharp's <c>a + b</c>).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>x + value.</summary>
    public static Tensor Plus(this Tensor x, double value) => Held(value, s => x.add(s, One));

    /// <summary>value − x, computed as TorchSharp's <c>value - x</c> does: −x + value.</summary>
    public static Tensor SubtractedFrom(this Tensor x, double value)
    {
        using var scalar = value.ToScalar();
        using var negated = x.negative();
        return negated.add(scalar, One);
    }

    /// <summary>x · value.</summary>
    public static Tensor Times(this Tensor x, double value) => Held(value, s => x.mul(s));

    /// <summary>x · value, with an integer factor.</summary>
    public static Tensor Times(this Tensor x, long value) => Held(value, s => x.mul(s));

    /// <summary>x / value, with an integer divisor.</summary>
    public static Tensor DividedBy(this Tensor x, long value) => Held(value, s => x.div(s));

    /// <summary>x / value.</summary>
    public static Tensor DividedBy(this Tensor x, double value) => Held(value, s => x.div(s));

    /// <summary>x ^ exponent.</summary>
    public static Tensor Power(this Tensor x, double exponent) => Held(exponent, s => x.pow(s));

    /// <summary>x ^ exponent, with an integer exponent (the result keeps x's integer type).</summary>
    public static Tensor Power(this Tensor x, long exponent) => Held(exponent, s => x.pow(s));

    /// <summary>x mod value, with an integer divisor (the result keeps x's integer type).</summary>
    public static Tensor Remainder(this Tensor x, long value) => Held(value, s => x.remainder(s));

    /// <summary>x mod value, with the sign of value (Python's %, torch.remainder).</summary>
    public static Tensor Remainder(this Tensor x, double value) => Held(value, s => x.remainder(s));

    /// <summary>x mod value, with the sign of x (C's fmod, torch.fmod).</summary>
    public static Tensor Fmod(this Tensor x, double value) => Held(value, s => x.fmod(s));

    /// <summary>x clamped to [min, max].</summary>
    public static Tensor Clamped(this Tensor x, double min, double max) => Held(min, max, (low, high) => x.clamp(low, high));

    /// <summary>max(x, min).</summary>
    public static Tensor ClampedMin(this Tensor x, double min) => Held(min, s => x.clamp_min(s));

    /// <summary>x with value wherever <paramref name="mask"/> is true.</summary>
    public static Tensor MaskedFilled(this Tensor x, Tensor mask, double value) => Held(value, s => x.masked_fill(mask, s));

    /// <summary>x ≥ threshold (bool).</summary>
    public static Tensor AtLeast(this Tensor x, double threshold) => Held(threshold, s => x.ge(s));

    /// <summary>In place: t ← t · value.</summary>
    public static Tensor TimesInPlace(this Tensor t, double value) => Held(value, s => t.mul_(s));

    /// <summary>In place: t clamped to [min, max].</summary>
    public static Tensor ClampedInPlace(this Tensor t, double min, double max) => Held(min, max, (low, high) => t.clamp_(low, high));

    /// <summary>In place: t ← t / value.</summary>
    public static Tensor DividedByInPlace(this Tensor t, double value) => Held(value, s => t.div_(s));

    /// <summary>In place: t ← t + value.</summary>
    public static Tensor PlusInPlace(this Tensor t, double value) => Held(value, s => t.add_(s, One));

    /// <summary>In place: t ← t + alpha · other.</summary>
    public static Tensor PlusInPlace(this Tensor t, Tensor other, double alpha) => Held(alpha, s => t.add_(other, s));

    /// <summary>In place: t ← t + value · a · b.</summary>
    public static Tensor AddcmulInPlace(this Tensor t, Tensor a, Tensor b, double value) => Held(value, s => t.addcmul_(a, b, s));

    /// <summary>In place: t ← t + value · a / b.</summary>
    public static Tensor AddcdivInPlace(this Tensor t, Tensor a, Tensor b, double value) => Held(value, s => t.addcdiv_(a, b, s));

    /// <summary>x with alpha · source added to the rows <paramref name="index"/> along <paramref name="dim"/>.</summary>
    public static Tensor IndexAdd(this Tensor x, long dim, Tensor index, Tensor source, double alpha) => Held(alpha, s => x.index_add(dim, index, source, s));
}
