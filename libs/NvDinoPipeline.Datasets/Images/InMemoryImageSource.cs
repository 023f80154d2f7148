namespace NvDinoPipeline.Datasets.Images;

/// <summary>Images held in memory (a benchmark's decoded dataset, a small validation set).</summary>
public sealed class InMemoryImageSource(IReadOnlyList<DecodedImage> images, string description = "images in memory") : IImageSource
{
    public int Count => images.Count;

    public string Description => description;

    public string PathOf(int index) => images[index].Path;

    public DecodedImage Read(int index) => images[index];

    public ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken) => ValueTask.FromResult(images[index]);

    public void Dispose()
    {
    }
}
