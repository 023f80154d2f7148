using System.Security.Cryptography;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Images;

/// <summary>
/// A folder (or S3 prefix) of encoded image files, decoded as they are read: what TAO's inference reads from
/// <c>images_dir</c>. Inputs are ordered by their relative path (ordinal), so a rerun lists them identically.
/// </summary>
public sealed class ImageFileSource(IArtifactStore store, IReadOnlyList<ImageFileSource.Entry> entries, long maxImageBytes, long maxImagePixels)
    : IInputImageSource
{
    public sealed record Entry(Uri Uri, string RelativePath, long Size);

    public string Kind => "image files";

    public int Count => entries.Count;

    public string PathOf(int index) => entries[index].RelativePath;

    public async ValueTask<InputImage> ReadAsync(int index, CancellationToken cancellationToken)
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
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(data));
        var (rgb, width, height) = ImageDecoding.Decode(data, entry.RelativePath, maxImagePixels);
        return new InputImage(entry.RelativePath, sha256, rgb, width, height);
    }

    public void Dispose()
    {
    }
}
