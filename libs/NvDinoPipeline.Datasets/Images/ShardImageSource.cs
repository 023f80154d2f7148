using NvDinoPipeline.Datasets.Shards;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>A staged dataset: the decoded RGB shards written by the staging worker.</summary>
public sealed class ShardImageSource(ShardReader reader, string description = "staged shards") : IImageSource
{
    public int Count => reader.Count;

    public string Description => description;

    public string PathOf(int index) => reader.GetInfo(index).RelativePath;

    public DecodedImage Read(int index)
    {
        try
        {
            var image = reader.Read(index);
            return new DecodedImage(image.Rgb, image.Width, image.Height, channels: 3, image.RelativePath, image.Sha256);
        }
        catch (InvalidDataException exception)
        {
            throw new UnreadableImageException(PathOf(index), exception.Message, exception);
        }
    }

    public ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(index));
    }

    public void Dispose() => reader.Dispose();
}
