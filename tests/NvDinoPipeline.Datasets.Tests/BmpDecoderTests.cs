using System.Buffers.Binary;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Testing;
using StbImageSharp;

namespace NvDinoPipeline.Datasets.Tests;

/// <summary>The whole-row BMP path must give exactly what StbImageSharp gives for the same file.</summary>
public sealed class BmpDecoderTests
{
    private static byte[] Stb(byte[] bmp) => ImageResult.FromMemory(bmp, StbImageSharp.ColorComponents.RedGreenBlue).Data;

    [Fact]
    public void Decodes_a_bottom_up_24_bit_bmp_like_stb()
    {
        var pattern = ImageFiles.Pattern(13, 7, seed: 3);
        var bmp = ImageFiles.EncodeBmp(pattern, 13, 7);

        var rgb = BmpDecoder.TryDecode(bmp, bmp.Length, out var width, out var height);

        Assert.Equal((13, 7), (width, height));
        Assert.Equal(pattern, rgb);
        Assert.Equal(Stb(bmp), rgb);
    }

    [Fact]
    public void Decodes_a_top_down_24_bit_bmp_like_stb()
    {
        var pattern = ImageFiles.Pattern(6, 5, seed: 4);
        var flipped = new byte[pattern.Length];
        for (var y = 0; y < 5; y++)
        {
            Array.Copy(pattern, (4 - y) * 18, flipped, y * 18, 18);
        }
        // A negative height marks rows stored top first; encoding the flipped picture bottom-up stores the original top first.
        var bmp = ImageFiles.EncodeBmp(flipped, 6, 5);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(22), -5);

        var rgb = BmpDecoder.TryDecode(bmp, bmp.Length, out _, out _);

        Assert.Equal(pattern, rgb);
        Assert.Equal(Stb(bmp), rgb);
    }

    [Fact]
    public void Decodes_a_32_bit_bmp_dropping_alpha_like_stb()
    {
        const int width = 9, height = 4;
        var bytes = new byte[54 + width * height * 4];
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), bytes.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(bytes.AsSpan(28), 32);
        for (var i = 54; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(i * 13);
        }

        var rgb = BmpDecoder.TryDecode(bytes, bytes.Length, out _, out _);

        Assert.NotNull(rgb);
        Assert.Equal(Stb(bytes), rgb);
    }

    [Fact]
    public void Leaves_palette_bmps_to_stb()
    {
        var bmp = ImageFiles.Bmp(4, 4, seed: 1);
        BinaryPrimitives.WriteUInt16LittleEndian(bmp.AsSpan(28), 8);

        Assert.Null(BmpDecoder.TryDecode(bmp, bmp.Length, out _, out _));
    }
}
