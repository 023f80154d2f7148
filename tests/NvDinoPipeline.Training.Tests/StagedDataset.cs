using System.Security.Cryptography;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;

namespace NvDinoPipeline.Training.Tests;

/// <summary>Writes images as a staged dataset (RGB shards, as the staging worker leaves them) into a folder.</summary>
internal static class StagedDataset
{
    public static async Task<Uri> WriteAsync(string folder, IImageSource images, int imagesPerShard = 5)
    {
        Directory.CreateDirectory(folder);
        for (int shard = 0, first = 0; first < images.Count; shard++, first += imagesPerShard)
        {
            await using var file = File.Create(Path.Combine(folder, $"shard-{shard:D5}.bin"));
            var writer = new ShardWriter(file);
            for (var i = first; i < Math.Min(first + imagesPerShard, images.Count); i++)
            {
                var image = images.Read(i);
                var hash = Convert.ToHexStringLower(SHA256.HashData(image.Pixels));
                await writer.AddAsync(image.Pixels, image.Width, image.Height, $"images/{i:D4}.png", hash, CancellationToken.None);
            }
            await writer.CompleteAsync(CancellationToken.None);
        }
        return new Uri("file://" + Path.GetFullPath(folder).TrimEnd('/') + "/");
    }
}
