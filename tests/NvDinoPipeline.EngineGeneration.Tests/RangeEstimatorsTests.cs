using NvDinoPipeline.Quantization;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class RangeEstimatorsTests
{
    private const int Bins = 2048;

    /// <summary>|x| of unit Gaussian samples, plus <paramref name="outliers"/> values at <paramref name="outlierValue"/>.</summary>
    private static (long[] Histogram, double Max) GaussianWithOutliers(int samples, int outliers, double outlierValue)
    {
        var random = new Random(3);
        var values = new List<double>();
        for (var i = 0; i < samples; i++)
        {
            // Box-Muller.
            var u1 = 1 - random.NextDouble();
            var u2 = random.NextDouble();
            values.Add(Math.Abs(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2)));
        }

        values.AddRange(Enumerable.Repeat(outlierValue, outliers));
        var max = values.Max();
        var histogram = new long[Bins];
        foreach (var v in values)
        {
            histogram[Math.Min(Bins - 1, (int)(v / max * Bins))]++;
        }

        return (histogram, max);
    }

    [Fact]
    public void Entropy_clips_rare_outliers_but_keeps_the_bulk_of_a_gaussian()
    {
        var (histogram, max) = GaussianWithOutliers(200_000, outliers: 20, outlierValue: 40);

        var threshold = RangeEstimators.Entropy(histogram, max);

        Assert.Equal(40, max);
        Assert.InRange(threshold, 2.5, 8);
    }

    [Fact]
    public void Entropy_keeps_nearly_the_whole_range_of_a_uniform_distribution()
    {
        var histogram = Enumerable.Repeat(100L, Bins).ToArray();

        var threshold = RangeEstimators.Entropy(histogram, 1.0);

        Assert.InRange(threshold, 0.9, 1.0);
    }

    [Fact]
    public void Percentile_100_is_the_whole_range_and_lower_percentiles_clip_the_tail()
    {
        var (histogram, max) = GaussianWithOutliers(200_000, outliers: 20, outlierValue: 40);

        Assert.Equal(max, RangeEstimators.Percentile(histogram, max, 100), 9);
        // 99.9 % of |N(0,1)| lies below 3.29.
        Assert.InRange(RangeEstimators.Percentile(histogram, max, 99.9), 3.2, 3.45);
        Assert.InRange(RangeEstimators.Percentile(histogram, max, 50), 0.65, 0.7);
    }

    [Fact]
    public void An_empty_histogram_has_a_zero_range()
    {
        Assert.Equal(0, RangeEstimators.Entropy(new long[Bins], 0));
        Assert.Equal(0, RangeEstimators.Percentile(new long[Bins], 0, 99.99));
    }
}
