namespace NvDinoPipeline.Inference.Images;

/// <summary>One input decoded to interleaved 8-bit RGB, row by row from the top.</summary>
/// <param name="Path">The input's path inside its dataset ('/'-separated), as written to the outputs.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the original file.</param>
public sealed record InputImage(string Path, string Sha256, byte[] Rgb, int Width, int Height);

/// <summary>The inputs of one inference job, addressed by their position in the dataset.</summary>
public interface IInputImageSource : IDisposable
{
    /// <summary>What the inputs are, for logs: staged shards or image files.</summary>
    string Kind { get; }

    int Count { get; }

    /// <summary>The path of input <paramref name="index"/>, known without reading it.</summary>
    string PathOf(int index);

    /// <summary>Reads and decodes input <paramref name="index"/>; safe to call from several threads at once.</summary>
    /// <exception cref="UnreadableImageException">This input cannot be used; the others can.</exception>
    ValueTask<InputImage> ReadAsync(int index, CancellationToken cancellationToken);
}

/// <summary>One input cannot be read or decoded; it is reported and skipped while the job goes on.</summary>
public sealed class UnreadableImageException(string path, string reason, Exception? inner = null)
    : Exception($"'{path}': {reason}", inner)
{
    public string Path { get; } = path;

    public string Reason { get; } = reason;
}
