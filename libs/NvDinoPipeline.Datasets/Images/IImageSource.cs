namespace NvDinoPipeline.Datasets.Images;

/// <summary>
/// Images addressed by their position: the staged dataset in training, the calibration images of an engine, the
/// inputs of an inference job. <see cref="ReadAsync"/> must be safe to call from several threads at once.
/// </summary>
public interface IImageSource : IDisposable
{
    int Count { get; }

    /// <summary>What the images are and where they come from, for logs and reports.</summary>
    string Description { get; }

    /// <summary>The path of image <paramref name="index"/>, known without reading it.</summary>
    string PathOf(int index);

    /// <summary>Reads (and decodes, for encoded files) image <paramref name="index"/>.</summary>
    /// <exception cref="UnreadableImageException">This image cannot be used; the others can.</exception>
    ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken);
}

public static class ImageSourceExtensions
{
    /// <summary>
    /// Reads image <paramref name="index"/> on the calling thread: for the training loader and calibration batches,
    /// whose sources (shards, images in memory, local files) complete without waiting.
    /// </summary>
    public static DecodedImage Read(this IImageSource source, int index)
    {
        var read = source.ReadAsync(index, CancellationToken.None);
        return read.IsCompletedSuccessfully ? read.Result : read.AsTask().GetAwaiter().GetResult();
    }
}

/// <summary>An image as interleaved 8-bit pixels, row by row from the top: <c>Pixels.Length == Width · Height · Channels</c>.</summary>
/// <remarks>Decoded files and staged shards are always RGB; 1 channel comes from images made in memory (Fashion-MNIST).</remarks>
public sealed record DecodedImage
{
    /// <param name="channels">1 (grayscale, replicated to RGB for training) or 3 (RGB).</param>
    /// <param name="path">The image's path inside its dataset ('/'-separated), as written to the outputs.</param>
    /// <param name="sha256">Lower-case hex SHA-256 of the original file, where it is known.</param>
    public DecodedImage(byte[] pixels, int width, int height, int channels, string path = "", string? sha256 = null)
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
        Path = path;
        Sha256 = sha256;
    }

    public byte[] Pixels { get; }

    public int Width { get; }

    public int Height { get; }

    public int Channels { get; }

    public string Path { get; init; }

    public string? Sha256 { get; init; }
}

/// <summary>One image cannot be read or decoded. Inference reports it and goes on; training and calibration fail naming it.</summary>
public sealed class UnreadableImageException(string path, string reason, Exception? inner = null)
    : IOException($"'{path}': {reason}", inner)
{
    public string Path { get; } = path;

    public string Reason { get; } = reason;
}
