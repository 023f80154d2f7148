using System.Formats.Tar;

namespace NvDinoPipeline.Deploy.Tests;

/// <summary>Small synthetic image archives: coloured squares on plain backgrounds, as 24-bit BMP files in a tar.</summary>
public static class TestImages
{
    public static string WriteArchive(string path, int count, int seed)
    {
        var random = new Random(seed);
        using var file = File.Create(path);
        using var tar = new TarWriter(file, TarEntryFormat.Pax);
        for (var i = 0; i < count; i++)
        {
            var bmp = Bmp(48, 48, random);
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, $"images/img{i:D4}.bmp") { DataStream = new MemoryStream(bmp) });
        }
        return path;
    }

    private static byte[] Bmp(int width, int height, Random random)
    {
        var stride = (width * 3 + 3) & ~3;
        var pixels = stride * height;
        var bmp = new byte[54 + pixels];
        var writer = new BinaryWriter(new MemoryStream(bmp));
        writer.Write("BM"u8);
        writer.Write(bmp.Length);
        writer.Write(0);
        writer.Write(54);
        writer.Write(40);
        writer.Write(width);
        writer.Write(height);
        writer.Write((short)1);
        writer.Write((short)24);
        writer.Write(0);
        writer.Write(pixels);
        writer.Write(2835);
        writer.Write(2835);
        writer.Write(0);
        writer.Write(0);
        var background = new[] { (byte)random.Next(0, 64), (byte)random.Next(0, 64), (byte)random.Next(0, 64) };
        var square = new[] { (byte)random.Next(128, 256), (byte)random.Next(128, 256), (byte)random.Next(128, 256) };
        var (x0, y0, size) = (random.Next(0, 24), random.Next(0, 24), random.Next(8, 24));
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var inside = x >= x0 && x < x0 + size && y >= y0 && y < y0 + size;
                Array.Copy(inside ? square : background, 0, bmp, 54 + y * stride + x * 3, 3);
            }
        }
        return bmp;
    }
}
