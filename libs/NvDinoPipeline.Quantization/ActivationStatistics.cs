using System.Numerics.Tensors;

namespace NvDinoPipeline.Quantization;

/// <summary>Running minimum, maximum and (once the range is known) a histogram of absolute values of one tensor.</summary>
internal sealed class ActivationStatistics(string name)
{
    private long[]? _histogram;
    private double _histogramMax;

    public string Name => name;

    public double Min { get; private set; } = double.PositiveInfinity;

    public double Max { get; private set; } = double.NegativeInfinity;

    public long Count { get; private set; }

    public double AbsMax => Math.Max(Math.Abs(Min), Math.Abs(Max));

    public ReadOnlySpan<long> Histogram => _histogram;

    public double HistogramMax => _histogramMax;

    public void AddRange(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }

        var min = TensorPrimitives.Min(values);
        var max = TensorPrimitives.Max(values);
        if (float.IsNaN(min) || float.IsNaN(max))
        {
            throw new InvalidDataException($"Calibration produced NaN in tensor '{name}'; the model or its input is not finite.");
        }

        Min = Math.Min(Min, min);
        Max = Math.Max(Max, max);
        Count += values.Length;
    }

    /// <summary>Starts a histogram of |x| over [0, <paramref name="max"/>] with <paramref name="bins"/> bins.</summary>
    public void StartHistogram(int bins, double max)
    {
        _histogram = new long[bins];
        _histogramMax = max;
    }

    public void AddToHistogram(ReadOnlySpan<float> values)
    {
        var histogram = _histogram ?? throw new InvalidOperationException($"No histogram was started for tensor '{name}'.");
        if (_histogramMax <= 0)
        {
            histogram[0] += values.Length;
            return;
        }

        var bins = histogram.Length;
        var perUnit = (float)(bins / _histogramMax);
        foreach (var value in values)
        {
            var bin = (int)(MathF.Abs(value) * perUnit);
            histogram[bin < bins ? bin : bins - 1]++;
        }
    }
}
