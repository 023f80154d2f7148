using System.Security.Cryptography;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Datasets.Shards;

namespace NvDinoPipeline.Testing;

/// <summary>Writes images as a staged dataset (RGB shards, as the staging worker leaves them) into a folder.</summary>
public static class StagedDataset
{
    /// <summary>
    /// Writes <c>shard-00000.bin</c>, <c>shard-00001.bin</c>, … of <paramref name="imagesPerShard"/> images each. An image
    /// without a path is stored as <c>images/{index:D4}.png</c>, one without a hash with the hash of its pixels.
    /// </summary>
    /// <returns>The folder as the <c>file://</c> URI a <c>DatasetStaged</c> message carries.</returns>
    public static async Task<Uri> WriteAsync(string folder, IImageSource images, int imagesPerShard = 5)
    {
        Directory.CreateDirectory(folder);
        for (int shard = 0, first = 0; first < images.Count; shard++, first += imagesPerShard)
        {
            await using var file = File.Create(Path.Combine(folder, ShardFormat.FileName(shard)));
            var writer = new ShardWriter(file);
            for (var i = first; i < Math.Min(first + imagesPerShard, images.Count); i++)
            {
                var image = images.Read(i);
                var path = image.Path is "" ? $"images/{i:D4}.png" : image.Path;
                var hash = image.Sha256 ?? Convert.ToHexStringLower(SHA256.HashData(image.Pixels));
                await writer.AddAsync(image.Pixels, image.Width, image.Height, path, hash, CancellationToken.None);
            }
            await writer.CompleteAsync(CancellationToken.None);
        }
        return TestImages.FileUri(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + "/");
    }
}
