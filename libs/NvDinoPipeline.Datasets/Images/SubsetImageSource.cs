namespace NvDinoPipeline.Datasets.Images;

/// <summary>Some images of another source, in the order of <paramref name="indices"/>; disposing it leaves the other source open.</summary>
public sealed class SubsetImageSource(IImageSource source, IReadOnlyList<int> indices, string description) : IImageSource
{
    private readonly IImageSource source = source ?? throw new ArgumentNullException(nameof(source));
    private readonly IReadOnlyList<int> indices = indices ?? throw new ArgumentNullException(nameof(indices));

    public int Count => indices.Count;

    public string Description { get; } = description;

    public string PathOf(int index) => source.PathOf(indices[index]);

    public ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken) => source.ReadAsync(indices[index], cancellationToken);

    public void Dispose()
    {
    }
}
