namespace NvDinoPipeline.Onnx;

/// <summary>How far two row-major outputs are apart: the largest element difference and the least similar row.</summary>
public sealed record ParityReport(double MaxAbsError, double MinCosine, int Rows)
{
    /// <summary>False when either figure is past its bound or NaN.</summary>
    public bool IsWithin(double maxAbsError, double minCosine) => MaxAbsError <= maxAbsError && MinCosine >= minCosine;

    public override string ToString() => $"max |Δ| {MaxAbsError:G3}, min cosine {MinCosine:F7} over {Rows} row(s)";
}

public static class OnnxParity
{
    /// <summary>Runs a model file with ONNX Runtime's CPU provider on one float32 batch.</summary>
    public static IReadOnlyList<OnnxTensor> Run(string modelPath, float[] input, IReadOnlyList<long> shape)
    {
        using var runner = new OnnxModelRunner(modelPath);
        return runner.Run(input, shape);
    }

    /// <summary>Compares <paramref name="actual"/> to <paramref name="expected"/> as rows of <paramref name="rowLength"/> values.</summary>
    public static ParityReport Compare(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, int rowLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        if (expected.Length != actual.Length)
        {
            throw new ArgumentException($"Expected {expected.Length} values but got {actual.Length}.", nameof(actual));
        }

        if (expected.Length % rowLength != 0)
        {
            throw new ArgumentException($"{expected.Length} values do not split into rows of {rowLength}.", nameof(rowLength));
        }

        var rows = expected.Length / rowLength;
        double maxAbs = 0, minCosine = 1;
        for (var r = 0; r < rows; r++)
        {
            var e = expected.Slice(r * rowLength, rowLength);
            var a = actual.Slice(r * rowLength, rowLength);
            double dot = 0, ee = 0, aa = 0;
            for (var i = 0; i < rowLength; i++)
            {
                double x = e[i], y = a[i];
                var diff = Math.Abs(x - y);
                maxAbs = double.IsNaN(diff) ? double.NaN : Math.Max(maxAbs, diff);
                dot += x * y;
                ee += x * x;
                aa += y * y;
            }

            // Two zero rows agree; a zero row against a non-zero one does not.
            var cosine = ee == 0 && aa == 0 ? 1 : ee == 0 || aa == 0 ? 0 : dot / Math.Sqrt(ee * aa);
            minCosine = double.IsNaN(cosine) ? double.NaN : Math.Min(minCosine, cosine);
        }

        return new ParityReport(maxAbs, minCosine, rows);
    }
}
