namespace NvDinoPipeline.Ssl.Schedules;

/// <summary>
/// DINOv2's <c>CosineScheduler</c> (<c>utils/utils.py</c>): <c>freezeIters</c> zeros, then a linear warm-up
/// from <c>startWarmupValue</c> to <c>baseValue</c> over <c>warmupIters</c> iterations (numpy linspace,
/// both ends included), then a half cosine from <c>baseValue</c> down (or up) to <c>finalValue</c> over
/// the remaining iterations. From <c>totalIters</c> on the value is <c>finalValue</c>.
/// </summary>
public sealed class CosineScheduler
{
    private readonly long zeroedPrefix;

    public CosineScheduler(double baseValue, double finalValue, long totalIters, long warmupIters = 0, double startWarmupValue = 0, long freezeIters = 0)
        : this(baseValue, finalValue, totalIters, warmupIters, startWarmupValue, freezeIters, zeroedPrefix: 0)
    {
    }

    private CosineScheduler(double baseValue, double finalValue, long totalIters, long warmupIters, double startWarmupValue, long freezeIters, long zeroedPrefix)
    {
        if (totalIters < 0) throw new ArgumentOutOfRangeException(nameof(totalIters), totalIters, "must not be negative");
        if (warmupIters < 0) throw new ArgumentOutOfRangeException(nameof(warmupIters), warmupIters, "must not be negative");
        if (freezeIters < 0) throw new ArgumentOutOfRangeException(nameof(freezeIters), freezeIters, "must not be negative");
        if (warmupIters + freezeIters > totalIters)
            throw new ArgumentException($"warm-up ({warmupIters}) plus freeze ({freezeIters}) iterations exceed the total of {totalIters}", nameof(totalIters));

        BaseValue = baseValue;
        FinalValue = finalValue;
        TotalIters = totalIters;
        WarmupIters = warmupIters;
        StartWarmupValue = startWarmupValue;
        FreezeIters = freezeIters;
        this.zeroedPrefix = zeroedPrefix;
    }

    public double BaseValue { get; }

    public double FinalValue { get; }

    public long TotalIters { get; }

    public long WarmupIters { get; }

    public double StartWarmupValue { get; }

    public long FreezeIters { get; }

    /// <summary>The value at iteration <paramref name="iteration"/> (0-based).</summary>
    public double this[long iteration]
    {
        get
        {
            if (iteration < 0) throw new ArgumentOutOfRangeException(nameof(iteration), iteration, "must not be negative");
            if (iteration >= TotalIters)
                return FinalValue;
            if (iteration < zeroedPrefix || iteration < FreezeIters)
                return 0.0;

            var k = iteration - FreezeIters;
            if (k < WarmupIters)
            {
                // numpy.linspace: a single point is the start, otherwise both ends are included.
                if (WarmupIters == 1)
                    return StartWarmupValue;
                if (k == WarmupIters - 1)
                    return BaseValue;
                var step = (BaseValue - StartWarmupValue) / (WarmupIters - 1);
                return StartWarmupValue + k * step;
            }

            var i = k - WarmupIters;
            var length = TotalIters - WarmupIters - FreezeIters;
            return FinalValue + 0.5 * (BaseValue - FinalValue) * (1 + Math.Cos(Math.PI * i / length));
        }
    }

    /// <summary>
    /// A copy whose first <paramref name="iterations"/> values are 0, as DINOv2 builds the last-layer
    /// learning rate (<c>schedule[:freeze_last_layer_epochs · epoch_length] = 0</c>).
    /// </summary>
    public CosineScheduler WithZeroedPrefix(long iterations)
    {
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), iterations, "must not be negative");
        return new CosineScheduler(BaseValue, FinalValue, TotalIters, WarmupIters, StartWarmupValue, FreezeIters, iterations);
    }
}
