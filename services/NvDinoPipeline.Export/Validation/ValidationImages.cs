using Microsoft.Extensions.Logging;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Datasets.Shards;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Export.Validation;

/// <summary>One decoded image: interleaved RGB bytes, row by row from the top.</summary>
public sealed record RgbImage(byte[] Rgb, int Width, int Height);

/// <summary>The images a parity check feeds both models, and where they came from.</summary>
public sealed record ValidationImageSet(IReadOnlyList<RgbImage> Images, string Source);

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

        var folder = datasetUri.AbsoluteUri.EndsWith('/') ? datasetUri : new Uri(datasetUri.AbsoluteUri + "/");
        var shards = new List<Uri>();
        await foreach (var item in store.ListAsync(folder, cancellationToken))
        {
            var relative = item.Uri.AbsoluteUri[folder.AbsoluteUri.Length..];
            if (!relative.Contains('/') && relative.StartsWith("shard-", StringComparison.Ordinal) && relative.EndsWith(".bin", StringComparison.Ordinal))
            {
                shards.Add(item.Uri);
            }
        }
        shards.Sort((a, b) => string.CompareOrdinal(a.AbsoluteUri, b.AbsoluteUri));
        if (shards.Count == 0)
        {
            throw new StageInputException($"Validation dataset '{folder}' holds no shard-*.bin files to check the exported model on.");
        }

        var images = new List<RgbImage>(count);
        foreach (var shard in shards)
        {
            try
            {
                var local = await store.GetLocalPathAsync(shard, scratchDirectory, cancellationToken);
                using var reader = ShardReader.Open(local);
                for (var i = 0; i < reader.Count && images.Count < count; i++)
                {
                    var image = reader.Read(i);
                    images.Add(new RgbImage(image.Rgb, image.Width, image.Height));
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
    /// Smooth colour gradients with noise, in several sizes, so the resize in pre-processing and every position of
    /// the patch grid see varied values.
    /// </summary>
    public static IReadOnlyList<RgbImage> Generate(int count, int seed)
    {
        var random = new Random(seed);
        var images = new List<RgbImage>(count);
        for (var n = 0; n < count; n++)
        {
            var width = 48 + 16 * (n % 3);
            var height = 40 + 24 * (n % 2);
            var rgb = new byte[width * height * 3];
            var phase = random.NextDouble() * Math.PI * 2;
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    for (var c = 0; c < 3; c++)
                    {
                        var wave = Math.Sin(phase + c * 2.1 + x * (0.11 + 0.03 * c) + y * (0.07 + 0.05 * n));
                        var value = 128 + 90 * wave + random.Next(-30, 31);
                        rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(value, 0, 255);
                    }
                }
            }
            images.Add(new RgbImage(rgb, width, height));
        }
        return images;
    }
}
