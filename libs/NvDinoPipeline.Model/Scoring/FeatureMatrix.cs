using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Scoring;

/// <summary>One feature vector per image, row by row: <c>Values.Length == Rows · Dimension</c>.</summary>
public sealed record FeatureMatrix(float[] Values, int Rows, int Dimension)
{
    /// <summary>The rows at <paramref name="rows"/>, in that order.</summary>
    public FeatureMatrix Select(IReadOnlyList<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var values = new float[rows.Count * Dimension];
        for (var i = 0; i < rows.Count; i++)
        {
            Array.Copy(Values, (long)rows[i] * Dimension, values, (long)i * Dimension, Dimension);
        }
        return new FeatureMatrix(values, rows.Count, Dimension);
    }

    /// <summary>
    /// The rows as one tensor, each divided by its L2 norm (at least 1e-12, as torch's <c>normalize</c>): the values are
    /// copied once and normalised in place, so a large gallery is not held a third time. These values are not changed.
    /// </summary>
    public Tensor ToNormalisedTensor()
    {
        var x = torch.tensor(Values, [Rows, Dimension]);
        using var norms = x.norm(1, keepdim: true);
        using var floor = torch.tensor(1e-12f);
        using var divisor = norms.maximum(floor);
        return x.div_(divisor);
    }

    /// <summary>The mean of each column.</summary>
    public float[] ColumnMeans()
    {
        var sums = new double[Dimension];
        for (var row = 0; row < Rows; row++)
        {
            var values = Values.AsSpan(row * Dimension, Dimension);
            for (var j = 0; j < Dimension; j++)
            {
                sums[j] += values[j];
            }
        }
        return [.. sums.Select(sum => (float)(sum / Math.Max(1, Rows)))];
    }

    /// <summary>Every row minus <paramref name="means"/> (one value per column).</summary>
    public FeatureMatrix Minus(float[] means)
    {
        ArgumentNullException.ThrowIfNull(means);
        if (means.Length != Dimension)
        {
            throw new ArgumentException($"{means.Length} means for {Dimension} columns.", nameof(means));
        }
        var values = new float[Values.Length];
        for (var row = 0; row < Rows; row++)
        {
            var from = Values.AsSpan(row * Dimension, Dimension);
            var to = values.AsSpan(row * Dimension, Dimension);
            for (var j = 0; j < Dimension; j++)
            {
                to[j] = from[j] - means[j];
            }
        }
        return new FeatureMatrix(values, Rows, Dimension);
    }

    /// <summary>
    /// The standard deviation over the rows of each column once every row is L2-normalised: the smallest and the median.
    /// An embedding that collapsed (every image mapped to nearly the same direction) has them all near zero.
    /// </summary>
    public (double Min, double Median) NormalisedColumnStd()
    {
        var (sums, squares) = (new double[Dimension], new double[Dimension]);
        for (var row = 0; row < Rows; row++)
        {
            var values = Values.AsSpan(row * Dimension, Dimension);
            double norm = 0;
            foreach (var value in values)
            {
                norm += (double)value * value;
            }
            var scale = norm > 0 ? 1 / Math.Sqrt(norm) : 0;
            for (var j = 0; j < Dimension; j++)
            {
                var x = values[j] * scale;
                sums[j] += x;
                squares[j] += x * x;
            }
        }
        var std = Enumerable.Range(0, Dimension)
            .Select(j => Rows < 2 ? 0 : Math.Sqrt(Math.Max(0, (squares[j] - sums[j] * sums[j] / Rows) / (Rows - 1))))
            .Order().ToArray();
        return std.Length == 0 ? (0, 0) : (std[0], std[std.Length / 2]);
    }
}
