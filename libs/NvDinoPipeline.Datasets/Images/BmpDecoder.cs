using System.Buffers.Binary;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>
/// Decodes uncompressed 24- and 32-bit BMPs (the usual ones) to RGB with whole-row copies; stb reads them a
/// byte at a time through a stream. Output matches stb's (alpha dropped). Palettes, 16-bit, bit fields and
/// RLE return null and go to stb.
/// </summary>
internal static class BmpDecoder
{
    public static byte[]? TryDecode(byte[] buffer, int length, out int width, out int height)
    {
        width = height = 0;
        var data = buffer.AsSpan(0, length);
        if (length < 54 || BinaryPrimitives.ReadUInt32LittleEndian(data[14..]) < 40)
        {
            return null;
        }
        var pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(data[10..]);
        var signedWidth = BinaryPrimitives.ReadInt32LittleEndian(data[18..]);
        var signedHeight = BinaryPrimitives.ReadInt32LittleEndian(data[22..]);
        var bitsPerPixel = BinaryPrimitives.ReadUInt16LittleEndian(data[28..]);
        var compression = BinaryPrimitives.ReadUInt32LittleEndian(data[30..]);
        if (compression != 0 || bitsPerPixel is not (24 or 32) || signedWidth <= 0 || signedHeight == 0 || signedHeight == int.MinValue)
        {
            return null;
        }
        width = signedWidth;
        height = Math.Abs(signedHeight);
        var bytesPerPixel = bitsPerPixel / 8;
        var rowBytes = ((long)bitsPerPixel * width + 31) / 32 * 4;
        if (pixelOffset + rowBytes * height > length)
        {
            throw new InvalidDataException($"the BMP pixel data needs {pixelOffset + rowBytes * height} bytes but the file has {length}");
        }

        var rgb = GC.AllocateUninitializedArray<byte>(checked(width * height * 3));
        var bottomUp = signedHeight > 0;
        for (var y = 0; y < height; y++)
        {
            var source = data.Slice((int)(pixelOffset + rowBytes * (bottomUp ? height - 1 - y : y)), width * bytesPerPixel);
            var target = rgb.AsSpan(y * width * 3, width * 3);
            for (int x = 0, s = 0, t = 0; x < width; x++, s += bytesPerPixel, t += 3)
            {
                target[t] = source[s + 2];
                target[t + 1] = source[s + 1];
                target[t + 2] = source[s];
            }
        }
        return rgb;
    }
}
