namespace NvDinoPipeline.Training.Core.Data;

/// <summary>Decoded training images by index. <see cref="Read"/> must be safe to call from several threads at once.</summary>
public interface IImageSource
{
    int Count { get; }

    DecodedImage Read(int index);
}

/// <summary>An image as interleaved 8-bit pixels, row by row from the top: <c>Pixels.Length == Width · Height · Channels</c>.</summary>
/// <param name="Channels">1 (grayscale, replicated to RGB for training) or 3 (RGB).</param>
public sealed record DecodedImage
{
    public DecodedImage(byte[] pixels, int width, int height, int channels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width < 1 || height < 1)
            throw new ArgumentException($"Image size {width}x{height} must be positive.");
        if (channels is not (1 or 3))
            throw new ArgumentException($"Images must have 1 or 3 channels, got {channels}.", nameof(channels));
        if (pixels.Length != (long)width * height * channels)
            throw new ArgumentException($"A {width}x{height} image with {channels} channels needs {(long)width * height * channels} bytes, got {pixels.Length}.", nameof(pixels));
        Pixels = pixels;
        Width = width;
        Height = height;
        Channels = channels;
    }

    public byte[] Pixels { get; }

    public int Width { get; }

    public int Height { get; }

    public int Channels { get; }
}

/// <summary>Images held in memory (a benchmark's decoded dataset, a small validation set).</summary>
public sealed class InMemoryImageSource(IReadOnlyList<DecodedImage> images) : IImageSource
{
    public int Count => images.Count;

    public DecodedImage Read(int index) => images[index];
}
