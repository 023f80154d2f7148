namespace NvDinoPipeline.Datasets.Images;

/// <summary>
/// Deterministic smooth colour patterns with mild noise, for checking an fp32/fp16 build when a job has no images.
/// Never used for calibration: ranges measured on them would not describe real images.
/// </summary>
public sealed class SyntheticImageSource(int count, int width, int height, int seed = 17) : IImageSource
{
    public int Count => count;

    public string Description => $"{count} generated {width}x{height} images";

    public string PathOf(int index) => $"synthetic-{index}";

    public ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken) => ValueTask.FromResult(Read(index));

    public DecodedImage Read(int index)
    {
        var random = new Random(seed + index);
        var rgb = new byte[width * height * 3];
        var (fx, fy, phase) = (random.NextDouble() * 0.3, random.NextDouble() * 0.3, random.NextDouble() * 6);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var value = 127.5 + 100 * Math.Sin(fx * x + fy * y + phase + 2 * c) + 20 * (random.NextDouble() - 0.5);
                    rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(value, 0, 255);
                }
            }
        }

        return new DecodedImage(rgb, width, height, channels: 3, PathOf(index));
    }

    public void Dispose()
    {
    }
}
