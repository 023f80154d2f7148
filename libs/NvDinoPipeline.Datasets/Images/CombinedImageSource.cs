namespace NvDinoPipeline.Datasets.Images;

/// <summary>Several sources read as one, in order.</summary>
public sealed class CombinedImageSource(IReadOnlyList<IImageSource> sources) : IImageSource
{
    public int Count => sources.Sum(s => s.Count);

    public string Description => string.Join(", ", sources.Select(s => s.Description));

    public string PathOf(int index)
    {
        var (source, local) = Locate(index);
        return source.PathOf(local);
    }

    public ValueTask<DecodedImage> ReadAsync(int index, CancellationToken cancellationToken)
    {
        var (source, local) = Locate(index);
        return source.ReadAsync(local, cancellationToken);
    }

    public void Dispose()
    {
        foreach (var source in sources)
        {
            source.Dispose();
        }
    }

    private (IImageSource Source, int Index) Locate(int index)
    {
        foreach (var source in sources)
        {
            if (index < source.Count)
            {
                return (source, index);
            }

            index -= source.Count;
        }

        throw new ArgumentOutOfRangeException(nameof(index));
    }
}
