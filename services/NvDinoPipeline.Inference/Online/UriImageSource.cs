using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Inference.Pipeline;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Online;

/// <summary>The images of one on-line request, read from the artifact store by URI and decoded.</summary>
public sealed class UriImageSource(IArtifactStore store, IReadOnlyList<Uri> uris, IReadOnlyList<string> allowedPrefixes, InferenceOptions options)
    : IImageSource
{
    public string Description => "requested images";

    public int Count => uris.Count;

    public string PathOf(int index) => uris[index].ToString();

    public async ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken)
    {
        var uri = uris[index];
        var path = uri.ToString();
        if (!uri.IsAbsoluteUri || uri.Scheme is not ("file" or "s3"))
        {
            throw new UnreadableImageException(path, "not an absolute file:// or s3:// URI");
        }
        if (!allowedPrefixes.Any(prefix => uri.AbsoluteUri.StartsWith(prefix, StringComparison.Ordinal)))
        {
            throw new UnreadableImageException(path,
                $"outside the locations this worker reads for on-line requests ({string.Join(", ", allowedPrefixes)}; setting {InferenceOptions.SectionName}:{nameof(InferenceOptions.OnlineAllowedPrefixes)})");
        }
        byte[] data;
        try
        {
            var info = await store.GetInfoAsync(uri, cancellationToken)
                ?? throw new UnreadableImageException(path, "no such object");
            if (info.Size > options.MaxImageBytes)
            {
                throw new UnreadableImageException(path, $"the file has {info.Size} bytes; at most {options.MaxImageBytes} are read");
            }
            await using var stream = await store.OpenReadAsync(uri, cancellationToken);
            using var buffer = new MemoryStream((int)info.Size);
            await stream.CopyToAsync(buffer, cancellationToken);
            data = buffer.ToArray();
        }
        catch (Exception exception) when (exception is ArgumentException or ArtifactNotFoundException or ArtifactStoreException or ArtifactIntegrityException or IOException)
        {
            throw new UnreadableImageException(path, exception.Message, exception);
        }
        return ImageFileSource.Decode(data, path, InputImages.Limits(options));
    }

    public void Dispose()
    {
    }
}
