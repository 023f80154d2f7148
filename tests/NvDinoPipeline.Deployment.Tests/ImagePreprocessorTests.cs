namespace NvDinoPipeline.Deployment.Tests;

public sealed class ImagePreprocessorTests
{
    private static readonly Preprocessing Square4 = new() { Height = 4, Width = 4 };

    [Fact]
    public void Same_size_image_is_normalised_per_channel_in_chw_order()
    {
        var rgb = new byte[4 * 4 * 3];
        for (var i = 0; i < 16; i++)
        {
            rgb[i * 3] = 255;
            rgb[i * 3 + 1] = 0;
            rgb[i * 3 + 2] = (byte)(i * 10);
        }
        var output = new float[3 * 16];

        new ImagePreprocessor(Square4).Preprocess(rgb, 4, 4, output);

        Assert.All(output[..16], v => Assert.Equal((1f - 0.485f) / 0.229f, v, 5));
        Assert.All(output[16..32], v => Assert.Equal(-0.456f / 0.224f, v, 5));
        for (var i = 0; i < 16; i++)
        {
            Assert.Equal((i * 10 / 255f - 0.406f) / 0.225f, output[32 + i], 4);
        }
    }

    [Fact]
    public void Downscaling_by_two_averages_neighbouring_pixel_pairs()
    {
        // 8×1 grey ramp to 4×1: bilinear with centred pixels samples between pixels 2k and 2k+1.
        var rgb = new byte[8 * 3];
        for (var x = 0; x < 8; x++)
        {
            rgb[x * 3] = rgb[x * 3 + 1] = rgb[x * 3 + 2] = (byte)(x * 20);
        }
        var preprocessing = new Preprocessing { Height = 1, Width = 4, Mean = [0, 0, 0], Std = [1, 1, 1] };
        var output = new float[3 * 4];

        new ImagePreprocessor(preprocessing).Preprocess(rgb, 8, 1, output);

        Assert.Equal([10 / 255f, 50 / 255f, 90 / 255f, 130 / 255f], output[..4].Select(v => MathF.Round(v, 6)).ToArray(),
            new Comparison(1e-6f));
    }

    [Fact]
    public void Too_few_bytes_for_the_stated_size_is_refused_with_the_numbers()
    {
        var error = Assert.Throws<ArgumentException>(() => new ImagePreprocessor(Square4).Preprocess(new byte[10], 4, 4, new float[48]));
        Assert.Contains("needs 48 RGB bytes; got 10", error.Message);
    }

    private sealed class Comparison(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;

        public int GetHashCode(float obj) => 0;
    }
}
