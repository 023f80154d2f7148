using System.Security.Cryptography;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>One encoded image file of a folder or S3 prefix.</summary>
/// <param name="RelativePath">Its path below the folder ('/'-separated).</param>
/// <param name="Size">Its size as listed, checked against the byte limit before it is read.</param>
public sealed record ImageFileEntry(Uri Uri, string RelativePath, long Size);

/// <summary>
/// A folder (or S3 prefix) of encoded image files, read from the artifact store and decoded as they are read: what
/// TAO's inference reads from <c>images_dir</c>, and calibration images given as files. Files larger than
/// <paramref name="maxImageBytes"/>, or whose header claims more than <paramref name="limits"/> allow, are refused
/// before their pixels are decoded.
/// </summary>
public sealed class ImageFileSource(IArtifactStore store, IReadOnlyList<ImageFileEntry> entries, long maxImageBytes, ImageLimits limits,
    string description = "image files") : IImageSource
{
    public string Description => description;

    public int Count => entries.Count;

    public string PathOf(int index) => entries[index].RelativePath;

    public async ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken)
    {
        var entry = entries[index];
        if (entry.Size > maxImageBytes)
        {
            throw new UnreadableImageException(entry.RelativePath, $"the file has {entry.Size} bytes; at most {maxImageBytes} are read");
        }
        byte[] data;
        try
        {
            await using var stream = await store.OpenReadAsync(entry.Uri, cancellationToken);
            using var buffer = new MemoryStream(checked((int)Math.Max(entry.Size, 0)));
            await stream.CopyToAsync(buffer, cancellationToken);
            data = buffer.ToArray();
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new UnreadableImageException(entry.RelativePath, "the file disappeared before it was read", exception);
        }
        return Decode(data, entry.RelativePath, limits);
    }

    /// <summary>Decodes one whole file to RGB, with its SHA-256; a refused file throws naming it.</summary>
    /// <exception cref="UnreadableImageException">The data is empty, not an image, too large, cut short or corrupt.</exception>
    public static DecodedImage Decode(byte[] data, string path, ImageLimits limits)
    {
        var result = ImageDecoder.Decode(path, data, data.Length, limits);
        if (result.Image is not { } image)
        {
            throw new UnreadableImageException(path, result.Detail);
        }
        return image with { Sha256 = Convert.ToHexStringLower(SHA256.HashData(data)) };
    }

    public void Dispose()
    {
    }
}
