using NvDinoPipeline.Datasets.Shards;

namespace NvDinoPipeline.Inference.Images;

/// <summary>The staged test images: decoded RGB shards written by the staging worker.</summary>
public sealed class ShardImageSource(ShardReader reader) : IInputImageSource
{
    public string Kind => "staged shards";

    public int Count => reader.Count;

    public string PathOf(int index) => reader.GetInfo(index).RelativePath;

    public ValueTask<InputImage> ReadAsync(int index, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            var image = reader.Read(index);
            return ValueTask.FromResult(new InputImage(image.RelativePath, image.Sha256, image.Rgb, image.Width, image.Height));
        }
        catch (InvalidDataException exception)
        {
            throw new UnreadableImageException(PathOf(index), exception.Message, exception);
        }
    }

    public void Dispose() => reader.Dispose();
}
