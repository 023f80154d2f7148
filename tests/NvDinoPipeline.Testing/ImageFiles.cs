using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace NvDinoPipeline.Testing;

/// <summary>Small image files made in the test: deterministic RGB patterns and minimal PNG, BMP and JPEG encoders.</summary>
public static class ImageFiles
{
    private static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>A smooth gradient with seeded noise, so neighbouring pixels differ and images of different seeds differ.</summary>
    public static byte[] Pattern(int width, int height, int seed)
    {
        var random = new Random(seed);
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = (y * width + x) * 3;
                rgb[i] = (byte)(x * 255 / Math.Max(1, width - 1) / 2 + random.Next(64));
                rgb[i + 1] = (byte)(y * 255 / Math.Max(1, height - 1) / 2 + random.Next(64));
                rgb[i + 2] = (byte)((seed * 37 + random.Next(128)) & 0xFF);
            }
        }
        return rgb;
    }

    public static byte[] Png(int width, int height, int seed) => EncodePng(Pattern(width, height, seed), width, height);

    public static byte[] Bmp(int width, int height, int seed) => EncodeBmp(Pattern(width, height, seed), width, height);

    /// <summary>Gradients without noise, distinct per seed: what a lossy codec keeps well.</summary>
    public static byte[] Smooth(int width, int height, int seed)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var i = (y * width + x) * 3;
                rgb[i] = (byte)(40 + x * 160 / Math.Max(1, width - 1));
                rgb[i + 1] = (byte)(40 + y * 160 / Math.Max(1, height - 1));
                rgb[i + 2] = (byte)(30 + seed * 47 % 190);
            }
        }
        return rgb;
    }

    /// <summary>A baseline JPEG of <see cref="Smooth"/> (lossy: decoded pixels are close to, not equal to, it).</summary>
    public static byte[] Jpeg(int width, int height, int seed, int quality = 95)
    {
        using var jpeg = new MemoryStream();
        new StbImageWriteSharp.ImageWriter().WriteJpg(Smooth(width, height, seed), width, height, StbImageWriteSharp.ColorComponents.RedGreenBlue, jpeg, quality);
        return jpeg.ToArray();
    }

    /// <summary>Mean absolute difference per byte between two RGB buffers of one size.</summary>
    public static double MeanAbsoluteError(byte[] a, byte[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs(x - y)).Average();
    }

    /// <summary>An 8-bit RGB PNG with unfiltered rows.</summary>
    public static byte[] EncodePng(byte[] rgb, int width, int height)
    {
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            for (var y = 0; y < height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(rgb, y * width * 3, width * 3);
            }
        }
        return PngFile((uint)width, (uint)height, raw.ToArray());
    }

    /// <summary>A PNG of any colour type and depth from raw rows, every row stored with <paramref name="filter"/>
    /// (0 none, 1 sub, 2 up, 3 average, 4 Paeth), with an optional palette and interlace flag.</summary>
    public static byte[] EncodePngRaw(int width, int height, byte colorType, byte bitDepth, byte[] rawRows, byte[]? palette = null,
        byte interlace = 0, byte filter = 0, int bytesPerPixel = 1)
    {
        var stride = rawRows.Length / height;
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            for (var y = 0; y < height; y++)
            {
                zlib.WriteByte(filter);
                for (var i = 0; i < stride; i++)
                {
                    int left = i >= bytesPerPixel ? rawRows[y * stride + i - bytesPerPixel] : 0;
                    int up = y > 0 ? rawRows[(y - 1) * stride + i] : 0;
                    int upLeft = y > 0 && i >= bytesPerPixel ? rawRows[(y - 1) * stride + i - bytesPerPixel] : 0;
                    var predictor = filter switch
                    {
                        1 => left,
                        2 => up,
                        3 => (left + up) / 2,
                        4 => PaethPredictor(left, up, upLeft),
                        _ => 0,
                    };
                    zlib.WriteByte((byte)(rawRows[y * stride + i] - predictor));
                }
            }
        }
        return PngFile((uint)width, (uint)height, raw.ToArray(), colorType, bitDepth, palette, interlace);
    }

    // The PNG specification's Paeth predictor, written as the specification writes it.
    private static int PaethPredictor(int a, int b, int c)
    {
        var p = a + b - c;
        var pa = Math.Abs(p - a);
        var pb = Math.Abs(p - b);
        var pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>A PNG whose header claims <paramref name="width"/>×<paramref name="height"/> over a few bytes of data.</summary>
    public static byte[] PngClaiming(uint width, uint height)
    {
        using var raw = new MemoryStream();
        using (var zlib = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            zlib.Write(new byte[64]);
        }
        return PngFile(width, height, raw.ToArray());
    }

    /// <summary>A 24-bit bottom-up BMP.</summary>
    public static byte[] EncodeBmp(byte[] rgb, int width, int height)
    {
        var stride = (width * 3 + 3) / 4 * 4;
        var size = 54 + stride * height;
        var bmp = new byte[size];
        bmp[0] = (byte)'B';
        bmp[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bmp.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(34), stride * height);
        for (var y = 0; y < height; y++)
        {
            var row = 54 + (height - 1 - y) * stride;
            for (var x = 0; x < width; x++)
            {
                var source = (y * width + x) * 3;
                bmp[row + x * 3] = rgb[source + 2];
                bmp[row + x * 3 + 1] = rgb[source + 1];
                bmp[row + x * 3 + 2] = rgb[source];
            }
        }
        return bmp;
    }

    private static byte[] PngFile(uint width, uint height, byte[] idat, byte colorType = 2, byte bitDepth = 8, byte[]? palette = null, byte interlace = 0)
    {
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, width);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), height);
        header[8] = bitDepth;
        header[9] = colorType;
        header[12] = interlace;
        WriteChunk(png, "IHDR", header);
        if (palette is not null)
        {
            WriteChunk(png, "PLTE", palette);
        }
        WriteChunk(png, "IDAT", idat);
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void WriteChunk(Stream png, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)data.Length);
        png.Write(length);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        png.Write(typeBytes);
        png.Write(data);
        var crc = Crc32([.. typeBytes, .. data]);
        Span<byte> crcBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crcBytes, crc);
        png.Write(crcBytes);
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }
        return crc ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[n] = c;
        }
        return table;
    }
}
