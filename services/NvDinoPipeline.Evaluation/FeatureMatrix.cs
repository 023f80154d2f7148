namespace NvDinoPipeline.Evaluation;

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
}
