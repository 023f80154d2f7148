namespace NvDinoPipeline.Quantization;

/// <summary>How closely one model's embeddings follow a reference's, row by row.</summary>
public sealed record FidelityReport(double MeanCosine, double MinCosine, double MaxAbsError, int Rows)
{
    public override string ToString() =>
        FormattableString.Invariant($"mean cosine {MeanCosine:F5}, min cosine {MinCosine:F5}, max |Δ| {MaxAbsError:G3} over {Rows} image(s)");
}

public static class EmbeddingFidelity
{
    /// <summary>Compares rows of <paramref name="rowLength"/> values; NaN anywhere makes the figures NaN.</summary>
    public static FidelityReport Compare(ReadOnlySpan<float> reference, ReadOnlySpan<float> actual, int rowLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        if (reference.Length != actual.Length)
        {
            throw new ArgumentException($"The reference has {reference.Length} values but the compared output {actual.Length}.", nameof(actual));
        }

        if (reference.Length == 0 || reference.Length % rowLength != 0)
        {
            throw new ArgumentException($"{reference.Length} values do not split into rows of {rowLength}.", nameof(rowLength));
        }

        var rows = reference.Length / rowLength;
        double sum = 0, min = double.PositiveInfinity, maxAbs = 0;
        for (var r = 0; r < rows; r++)
        {
            var e = reference.Slice(r * rowLength, rowLength);
            var a = actual.Slice(r * rowLength, rowLength);
            double dot = 0, ee = 0, aa = 0;
            for (var i = 0; i < rowLength; i++)
            {
                double x = e[i], y = a[i];
                maxAbs = Math.Max(maxAbs, Math.Abs(x - y));
                if (double.IsNaN(y) || double.IsNaN(x))
                {
                    maxAbs = double.NaN;
                }

                dot += x * y;
                ee += x * x;
                aa += y * y;
            }

            var cosine = ee == 0 && aa == 0 ? 1 : ee == 0 || aa == 0 ? 0 : dot / Math.Sqrt(ee * aa);
            sum += cosine;
            min = double.IsNaN(cosine) ? double.NaN : Math.Min(min, cosine);
        }

        return new FidelityReport(sum / rows, min, maxAbs, rows);
    }
}
