using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference.Images;

public static class InputImageSources
{
    private const string DatasetFileName = "dataset.json";

    /// <summary>
    /// Opens the inputs at <paramref name="datasetUri"/>: a staging job's shards folder (<c>dataset.json</c> or
    /// <c>shard-*.bin</c>), or else a folder of image files (JPEG, PNG, …, searched recursively).
    /// </summary>
    /// <exception cref="StageInputException">The folder holds neither, or its shards are unreadable.</exception>
    public static async Task<IInputImageSource> OpenAsync(IArtifactStore store, Uri datasetUri, string scratchDirectory,
        InferenceOptions options, CancellationToken cancellationToken)
    {
        var folder = datasetUri.AbsoluteUri.EndsWith('/') ? datasetUri : new Uri(datasetUri.AbsoluteUri + "/");
        var isShards = await store.GetInfoAsync(folder.Append(DatasetFileName), cancellationToken) is not null;
        var images = new List<ImageFileSource.Entry>();
        if (!isShards)
        {
            await foreach (var item in store.ListAsync(folder, cancellationToken))
            {
                var relative = Uri.UnescapeDataString(item.Uri.AbsoluteUri[folder.AbsoluteUri.Length..]);
                var name = relative[(relative.LastIndexOf('/') + 1)..];
                if (!relative.Contains('/') && name.StartsWith("shard-", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal))
                {
                    isShards = true;
                    break;
                }
                if (ImageDecoding.IsImageName(name))
                {
                    images.Add(new ImageFileSource.Entry(item.Uri, relative, item.Size));
                }
            }
        }
        if (isShards)
        {
            try
            {
                return new ShardImageSource(await ShardReader.OpenAsync(store, folder, scratchDirectory, cancellationToken));
            }
            catch (InvalidDataException exception)
            {
                throw new StageInputException($"The staged dataset {folder} cannot be read: {exception.Message}", exception);
            }
        }
        if (images.Count == 0)
        {
            throw new StageInputException($"{folder} holds neither staged shards ({DatasetFileName}, shard-*.bin) nor image files ({string.Join(", ", ImageDecoding.Extensions)}).");
        }
        images.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
        return new ImageFileSource(store, images, options.MaxImageBytes, options.MaxImagePixels);
    }
}
