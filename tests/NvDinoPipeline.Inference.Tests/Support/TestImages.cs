using System.Security.Cryptography;
using NvDinoPipeline.Datasets.Shards;
using StbImageWriteSharp;

namespace NvDinoPipeline.Inference.Tests.Support;

/// <summary>A generated RGB image and its PNG encoding.</summary>
public sealed record TestImage(string Path, byte[] Rgb, int Width, int Height, byte[] Png)
{
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Png));
}

public static class TestImages
{
    /// <summary>Distinct images of assorted sizes (smaller, larger and not square, against the model's 32×32).</summary>
    public static IReadOnlyList<TestImage> Make(int count, int seed = 1, string prefix = "img")
    {
        var random = new Random(seed);
        var images = new List<TestImage>(count);
        for (var i = 0; i < count; i++)
        {
            var width = 16 + random.Next(40);
            var height = 16 + random.Next(40);
            var rgb = new byte[width * height * 3];
            var (fx, fy, phase) = (random.Next(1, 6), random.Next(1, 6), random.Next(256));
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var p = (y * width + x) * 3;
                    rgb[p] = (byte)(x * 255 / width);
                    rgb[p + 1] = (byte)((x * fx + y * fy) * 8 + phase);
                    rgb[p + 2] = (byte)random.Next(256);
                }
            }
            images.Add(new TestImage($"{prefix}/{i:D3}.png", rgb, width, height, EncodePng(rgb, width, height)));
        }
        return images;
    }

    /// <summary>A local path as the <c>file://</c> URI messages carry.</summary>
    public static Uri FileUri(string path) => new(new Uri(path).AbsoluteUri);

    public static byte[] EncodePng(byte[] rgb, int width, int height)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(rgb, width, height, ColorComponents.RedGreenBlue, stream);
        return stream.ToArray();
    }

    /// <summary>Writes the images as the staging worker does: one shard of decoded RGB in a <c>shards/</c> folder.</summary>
    public static async Task<string> WriteShardsAsync(string folder, IEnumerable<TestImage> images)
    {
        Directory.CreateDirectory(folder);
        await using (var file = File.Create(Path.Combine(folder, "shard-00000.bin")))
        {
            var writer = new ShardWriter(file);
            foreach (var image in images)
            {
                await writer.AddAsync(image.Rgb, image.Width, image.Height, image.Path, image.Sha256, CancellationToken.None);
            }
            await writer.CompleteAsync(CancellationToken.None);
        }
        return new Uri(Path.TrimEndingDirectorySeparator(folder) + "/").AbsoluteUri;
    }

    /// <summary>Writes the images as PNG files under <paramref name="folder"/> at their paths.</summary>
    public static string WriteFiles(string folder, IEnumerable<TestImage> images)
    {
        foreach (var image in images)
        {
            var path = System.IO.Path.Combine(folder, image.Path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, image.Png);
        }
        return new Uri(Path.TrimEndingDirectorySeparator(folder) + "/").AbsoluteUri;
    }
}
