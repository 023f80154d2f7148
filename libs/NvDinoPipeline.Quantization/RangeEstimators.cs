namespace NvDinoPipeline.Quantization;

/// <summary>Clipping thresholds from a histogram of absolute values over [0, <c>histogramMax</c>].</summary>
public static class RangeEstimators
{
    /// <summary>Quantisation levels on one side of zero for symmetric int8 (0..127).</summary>
    public const int Int8Levels = 128;

    /// <summary>The upper edge of the bin where the cumulative share of values first reaches <paramref name="percentile"/>.</summary>
    public static double Percentile(ReadOnlySpan<long> histogram, double histogramMax, double percentile)
    {
        if (!(percentile > 0 && percentile <= 100))
        {
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "A percentile lies in (0, 100].");
        }

        long total = 0;
        foreach (var count in histogram)
        {
            total += count;
        }

        if (total == 0)
        {
            return 0;
        }

        var width = histogramMax / histogram.Length;
        var target = percentile / 100 * total;
        long cumulative = 0;
        for (var i = 0; i < histogram.Length; i++)
        {
            cumulative += histogram[i];
            if (cumulative >= target)
            {
                return (i + 1) * width;
            }
        }

        return histogramMax;
    }

    /// <summary>
    /// TensorRT's entropy calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017): for every candidate
    /// threshold bin i ≥ 128, fold the outliers into bin i−1 (P), merge the first i bins into 128 levels and spread
    /// each level's count evenly over its occupied bins (Q), and keep the i with the least KL(P‖Q). Both are smoothed
    /// first as MXNet and ONNX Runtime do: empty bins get a count ε taken evenly from the occupied ones. Returns
    /// (i + 0.5) bin widths.
    /// </summary>
    public static double Entropy(ReadOnlySpan<long> histogram, double histogramMax)
    {
        const double Epsilon = 1e-4;
        var bins = histogram.Length;
        if (bins < Int8Levels)
        {
            throw new ArgumentException($"Entropy calibration needs at least {Int8Levels} histogram bins, got {bins}.", nameof(histogram));
        }

        var width = histogramMax / bins;
        var prefix = new long[bins + 1];
        var occupied = new int[bins + 1];
        var lastNonZero = -1;
        for (var j = 0; j < bins; j++)
        {
            prefix[j + 1] = prefix[j] + histogram[j];
            occupied[j + 1] = occupied[j] + (histogram[j] != 0 ? 1 : 0);
            if (histogram[j] != 0)
            {
                lastNonZero = j;
            }
        }

        if (lastNonZero < 0)
        {
            return 0;
        }

        // Past the last occupied bin every candidate keeps all values as the one at lastNonZero + 1 does.
        var end = Math.Min(bins, Math.Max(Int8Levels, lastNonZero + 1));
        double total = prefix[bins];
        var best = end;
        var bestDivergence = double.PositiveInfinity;
        for (var i = Int8Levels; i <= end; i++)
        {
            double inRange = prefix[i];
            var lastP = histogram[i - 1] + (total - inRange);
            var pNonZeros = occupied[i - 1] + (lastP > 0 ? 1 : 0);
            var qNonZeros = occupied[i];
            if (inRange == 0 || pNonZeros == 0 || qNonZeros == 0)
            {
                continue;
            }

            var pTake = Epsilon * (i - pNonZeros) / pNonZeros;
            var qTake = Epsilon * (i - qNonZeros) / qNonZeros;

            // KL = Σ p'·log(p'/q') / ΣP + log(ΣQ/ΣP): smoothing keeps both sums, and bins empty in both add nothing.
            double sum = 0;
            var valid = true;
            var perLevel = (double)i / Int8Levels;
            for (var level = 0; level < Int8Levels && valid; level++)
            {
                var start = (int)(level * perLevel);
                var stop = level == Int8Levels - 1 ? i : (int)((level + 1) * perLevel);
                var levelOccupied = occupied[stop] - occupied[start];
                var q = levelOccupied > 0 ? (double)(prefix[stop] - prefix[start]) / levelOccupied : 0;
                for (var j = start; j < stop; j++)
                {
                    var h = histogram[j];
                    var p = j == i - 1 ? lastP : h;
                    if (p == 0 && h == 0)
                    {
                        continue;
                    }

                    var ps = p == 0 ? Epsilon : p - pTake;
                    var qs = h == 0 ? Epsilon : q - qTake;
                    if (ps <= 0 || qs <= 0)
                    {
                        valid = false;
                        break;
                    }

                    sum += ps * Math.Log(ps / qs);
                }
            }

            var divergence = sum / total + Math.Log(inRange / total);
            if (valid && divergence < bestDivergence)
            {
                bestDivergence = divergence;
                best = i;
            }
        }

        return Math.Min((best + 0.5) * width, histogramMax);
    }
}
