using System.Buffers.Binary;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>
/// Reads the pixel dimensions a file claims without decoding it. Own parsers rather than stb's info
/// functions: stb refuses very large headers with the same failure as broken ones, and a user needs to
/// hear "100000×100000 pixels" rather than "corrupt".
/// </summary>
public static class ImageHeader
{
    public static bool TryRead(ImageFormat format, ReadOnlySpan<byte> data, out long width, out long height)
    {
        width = height = 0;
        switch (format)
        {
            case ImageFormat.Png when data.Length >= 24 && data[12..16].SequenceEqual("IHDR"u8):
                width = BinaryPrimitives.ReadUInt32BigEndian(data[16..]);
                height = BinaryPrimitives.ReadUInt32BigEndian(data[20..]);
                return true;
            case ImageFormat.Gif when data.Length >= 10:
                width = BinaryPrimitives.ReadUInt16LittleEndian(data[6..]);
                height = BinaryPrimitives.ReadUInt16LittleEndian(data[8..]);
                return true;
            case ImageFormat.Bmp when data.Length >= 26:
                var dibSize = BinaryPrimitives.ReadUInt32LittleEndian(data[14..]);
                if (dibSize == 12)
                {
                    width = BinaryPrimitives.ReadUInt16LittleEndian(data[18..]);
                    height = BinaryPrimitives.ReadUInt16LittleEndian(data[20..]);
                }
                else
                {
                    width = BinaryPrimitives.ReadInt32LittleEndian(data[18..]);
                    height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[22..]));
                }
                return true;
            case ImageFormat.Tga when data.Length >= 18:
                width = BinaryPrimitives.ReadUInt16LittleEndian(data[12..]);
                height = BinaryPrimitives.ReadUInt16LittleEndian(data[14..]);
                return true;
            case ImageFormat.Jpeg:
                return TryReadJpeg(data, out width, out height);
            default:
                return false;
        }
    }

    private static bool TryReadJpeg(ReadOnlySpan<byte> data, out long width, out long height)
    {
        width = height = 0;
        var position = 2;
        while (position + 4 <= data.Length)
        {
            if (data[position] != 0xFF)
            {
                return false;
            }
            while (position < data.Length && data[position] == 0xFF)
            {
                position++;
            }
            if (position >= data.Length)
            {
                return false;
            }
            var marker = data[position++];
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7))
            {
                continue;
            }
            if (marker is 0xD9 or 0xDA || position + 2 > data.Length)
            {
                return false;
            }
            var segmentLength = BinaryPrimitives.ReadUInt16BigEndian(data[position..]);
            var isFrameHeader = marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC);
            if (isFrameHeader)
            {
                if (position + 7 > data.Length)
                {
                    return false;
                }
                height = BinaryPrimitives.ReadUInt16BigEndian(data[(position + 3)..]);
                width = BinaryPrimitives.ReadUInt16BigEndian(data[(position + 5)..]);
                return true;
            }
            position += segmentLength;
        }
        return false;
    }
}
