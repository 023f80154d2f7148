using Microsoft.Extensions.Logging;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Export.Validation;

/// <summary>The images a parity check feeds both models, and where they came from.</summary>
public sealed record ValidationImageSet(IReadOnlyList<DecodedImage> Images, string Source);

public static class ValidationImages
{
    /// <summary>
    /// The first <paramref name="count"/> images of a staged dataset (its shards folder), reading only as many shards
    /// as needed; a dataset with fewer images is cycled. Without a dataset, generated images.
    /// </summary>
    public static async Task<ValidationImageSet> LoadAsync(IArtifactStore store, Uri? datasetUri, int count, string scratchDirectory,
        ILogger logger, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (datasetUri is null)
        {
            return new ValidationImageSet(Generate(count, seed: 20240601), "generated images");
        }

        var folder = datasetUri.AsFolder();
        var shards = await ShardReader.ListShardsAsync(store, folder, cancellationToken);
        if (shards.Count == 0)
        {
            throw new StageInputException($"Validation dataset '{folder}' holds no shard-*.bin files to check the exported model on.");
        }

        var images = new List<DecodedImage>(count);
        foreach (var (shard, _) in shards)
        {
            try
            {
                var local = await store.GetLocalPathAsync(shard, scratchDirectory, cancellationToken);
                using var source = new ShardImageSource(ShardReader.Open(local));
                for (var i = 0; i < source.Count && images.Count < count; i++)
                {
                    images.Add(source.Read(i));
                }
            }
            catch (Exception exception) when (exception is InvalidDataException or IOException)
            {
                throw new StageInputException($"Validation dataset shard '{shard}' is unreadable: {exception.Message}", exception);
            }
            if (images.Count == count)
            {
                break;
            }
        }
        if (images.Count == 0)
        {
            throw new StageInputException($"Validation dataset '{folder}' holds no images to check the exported model on.");
        }
        if (images.Count < count)
        {
            logger.LogInformation("Validation dataset {DatasetUri} has {ImageCount} images; repeating them to fill a batch of {BatchSize}",
                folder, images.Count, count);
            var distinct = images.Count;
            for (var i = distinct; i < count; i++)
            {
                images.Add(images[i % distinct]);
            }
        }
        return new ValidationImageSet(images, $"the first {Math.Min(count, images.Count)} images of {folder}");
    }

    /// <summary>
    /// Generated images in several sizes, so the resize in pre-processing and every position of the patch grid see
    /// varied values.
    /// </summary>
    public static IReadOnlyList<DecodedImage> Generate(int count, int seed) =>
        [.. Enumerable.Range(0, count).Select(n =>
            new SyntheticImageSource(1, width: 48 + 16 * (n % 3), height: 40 + 24 * (n % 2), seed + n).Read(0))];
}
