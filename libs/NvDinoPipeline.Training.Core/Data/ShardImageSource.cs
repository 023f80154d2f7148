using NvDinoPipeline.Datasets.Shards;

namespace NvDinoPipeline.Training.Core.Data;

/// <summary>The staged dataset's RGB shards as training images.</summary>
public sealed class ShardImageSource(ShardReader reader) : IImageSource, IDisposable
{
    public int Count => reader.Count;

    public DecodedImage Read(int index)
    {
        var image = reader.Read(index);
        return new DecodedImage(image.Rgb, image.Width, image.Height, channels: 3);
    }

    public void Dispose() => reader.Dispose();
}
