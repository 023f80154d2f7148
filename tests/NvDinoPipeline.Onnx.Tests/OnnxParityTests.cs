namespace NvDinoPipeline.Onnx.Tests;

public sealed class OnnxParityTests
{
    [Fact]
    public void Reports_the_largest_difference_and_the_least_similar_row()
    {
        float[] expected = [1, 0, 0, 1, 2, 3];
        float[] actual = [1, 0, 1, 1, 2, 3.5f];

        var report = OnnxParity.Compare(expected, actual, rowLength: 2);

        Assert.Equal(3, report.Rows);
        Assert.Equal(1.0, report.MaxAbsError, 12);
        Assert.Equal(1 / Math.Sqrt(2), report.MinCosine, 12);
        Assert.False(report.IsWithin(0.5, 0.5));
        Assert.True(report.IsWithin(1.0, 0.7));
    }

    [Fact]
    public void Identical_outputs_are_within_any_bound()
    {
        float[] values = [0.25f, -3, 7, 0, 0, 0];

        var report = OnnxParity.Compare(values, values, rowLength: 3);

        Assert.Equal(0, report.MaxAbsError);
        Assert.Equal(1, report.MinCosine, 12);
        Assert.True(report.IsWithin(0, 1));
    }

    [Fact]
    public void A_nan_in_the_output_is_never_within_bounds()
    {
        var report = OnnxParity.Compare([1f, 2f], [1f, float.NaN], rowLength: 2);

        Assert.False(report.IsWithin(double.MaxValue, -1));
    }

    [Fact]
    public void Rejects_outputs_of_different_lengths()
    {
        var error = Assert.Throws<ArgumentException>(() => OnnxParity.Compare([1f, 2f], [1f], rowLength: 1));
        Assert.Contains("Expected 2 values but got 1", error.Message);
    }
}
