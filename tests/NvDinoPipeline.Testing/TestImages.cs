using System.Formats.Tar;
using System.Security.Cryptography;
using NvDinoPipeline.Datasets.Images;

namespace NvDinoPipeline.Testing;

/// <summary>A generated RGB image and its PNG encoding.</summary>
public sealed record TestImage(string Path, byte[] Rgb, int Width, int Height, byte[] Png)
{
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Png));

    public DecodedImage Decoded => new(Rgb, Width, Height, channels: 3, Path, Sha256);
}

/// <summary>
/// Generated pictures for the tests of training, engine generation, inference and deployment, and the folders,
/// shards and archives they are handed over in. The encoders are <see cref="ImageFiles"/>'.
/// </summary>
public static class TestImages
{
    /// <summary>Random blocks of colour on a gradient, <paramref name="side"/> pixels square: a small training set.</summary>
    public static InMemoryImageSource Blocks(int count, int side = 32, int seed = 1)
    {
        var random = new Random(seed);
        var images = new List<DecodedImage>(count);
        for (var n = 0; n < count; n++)
        {
            var pixels = new byte[side * side * 3];
            var (r, g, b) = (random.Next(256), random.Next(256), random.Next(256));
            var top = random.Next(side / 2);
            var left = random.Next(side / 2);
            var size = side / 4 + random.Next(side / 4);
            for (var y = 0; y < side; y++)
            {
                for (var x = 0; x < side; x++)
                {
                    var inside = y >= top && y < top + size && x >= left && x < left + size;
                    var i = (y * side + x) * 3;
                    pixels[i] = (byte)(inside ? r : x * 255 / side);
                    pixels[i + 1] = (byte)(inside ? g : y * 255 / side);
                    pixels[i + 2] = (byte)(inside ? b : 128);
                }
            }
            images.Add(new DecodedImage(pixels, side, side, 3));
        }
        return new InMemoryImageSource(images);
    }

    /// <summary>A few coloured circles and squares on a gradient, with mild noise, different for every seed.</summary>
    public static byte[] Shapes(int width, int height, int seed)
    {
        var random = new Random(seed);
        var rgb = new byte[width * height * 3];
        var background = Enumerable.Range(0, 3).Select(_ => random.Next(30, 220)).ToArray();
        var gradient = Enumerable.Range(0, 3).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        var shapes = Enumerable.Range(0, 3).Select(_ => (
            X: random.Next(width), Y: random.Next(height), R: random.Next(3, Math.Max(4, width / 3)),
            Colour: Enumerable.Range(0, 3).Select(_ => random.Next(256)).ToArray(), Square: random.Next(2) == 0)).ToArray();
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    double value = background[c] + gradient[c] * (x + y) * 2;
                    foreach (var s in shapes)
                    {
                        var inside = s.Square
                            ? Math.Abs(x - s.X) <= s.R && Math.Abs(y - s.Y) <= s.R
                            : (x - s.X) * (x - s.X) + (y - s.Y) * (y - s.Y) <= s.R * s.R;
                        if (inside)
                        {
                            value = s.Colour[c];
                        }
                    }

                    rgb[(y * width + x) * 3 + c] = (byte)Math.Clamp(value + random.Next(-8, 9), 0, 255);
                }
            }
        }

        return rgb;
    }

    /// <summary>Distinct PNG images of assorted sizes (16 to 55 pixels a side, mostly not square), at <c>{prefix}/{i:D3}.png</c>.</summary>
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
            images.Add(new TestImage($"{prefix}/{i:D3}.png", rgb, width, height, ImageFiles.EncodePng(rgb, width, height)));
        }
        return images;
    }

    /// <summary>A local path as the <c>file://</c> URI messages carry.</summary>
    public static Uri FileUri(string path) => new(new Uri(path).AbsoluteUri);

    /// <summary>Writes the images as the staging worker does: one shard of decoded RGB in a <c>shards/</c> folder.</summary>
    public static async Task<string> WriteShardsAsync(string folder, IEnumerable<TestImage> images) =>
        (await StagedDataset.WriteAsync(folder, new InMemoryImageSource([.. images.Select(i => i.Decoded)]), imagesPerShard: int.MaxValue)).AbsoluteUri;

    /// <summary>Writes the images as PNG files under <paramref name="folder"/> at their paths.</summary>
    public static string WriteFiles(string folder, IEnumerable<TestImage> images)
    {
        foreach (var image in images)
        {
            var path = System.IO.Path.Combine(folder, image.Path);
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, image.Png);
        }
        return FileUri(System.IO.Path.TrimEndingDirectorySeparator(folder) + "/").AbsoluteUri;
    }

    /// <summary>A tar of <paramref name="count"/> 48×48 BMP files under <c>images/</c>: a coloured square on a plain background each.</summary>
    public static string WriteArchive(string path, int count, int seed)
    {
        var random = new Random(seed);
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        for (var i = 0; i < count; i++)
        {
            var bmp = ImageFiles.EncodeBmp(Square(48, 48, random), 48, 48);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"images/img{i:D4}.bmp") { DataStream = new MemoryStream(bmp) });
        }
        return path;
    }

    private static byte[] Square(int width, int height, Random random)
    {
        var background = new[] { (byte)random.Next(0, 64), (byte)random.Next(0, 64), (byte)random.Next(0, 64) };
        var square = new[] { (byte)random.Next(128, 256), (byte)random.Next(128, 256), (byte)random.Next(128, 256) };
        var (x0, y0, size) = (random.Next(0, 24), random.Next(0, 24), random.Next(8, 24));
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var inside = x >= x0 && x < x0 + size && y >= y0 && y < y0 + size;
                Array.Copy(inside ? square : background, 0, rgb, (y * width + x) * 3, 3);
            }
        }
        return rgb;
    }
}
