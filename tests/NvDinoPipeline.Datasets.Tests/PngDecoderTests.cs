using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Testing;
using StbImageSharp;
using StbImageWriteSharp;
using WriteComponents = StbImageWriteSharp.ColorComponents;

namespace NvDinoPipeline.Datasets.Tests;

/// <summary>The native-zlib PNG path must give exactly what StbImageSharp gives for the same file.</summary>
public sealed class PngDecoderTests
{
    private static byte[] Stb(byte[] png) => ImageResult.FromMemory(png, StbImageSharp.ColorComponents.RedGreenBlue).Data;

    private static byte[] Fast(byte[] png)
    {
        var rgb = PngDecoder.TryDecode(png, png.Length, out _, out _);
        Assert.NotNull(rgb);
        return rgb;
    }

    [Theory]
    [InlineData(WriteComponents.Grey, 1)]
    [InlineData(WriteComponents.GreyAlpha, 2)]
    [InlineData(WriteComponents.RedGreenBlue, 3)]
    [InlineData(WriteComponents.RedGreenBlueAlpha, 4)]
    public void Matches_stb_for_filtered_8_bit_pngs_of_every_channel_count(WriteComponents components, int channels)
    {
        const int width = 37, height = 23;
        var random = new Random(channels);
        var pixels = new byte[width * height * channels];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i / channels % width * 5 + random.Next(8));
        }
        using var png = new MemoryStream();
        new ImageWriter().WritePng(pixels, width, height, components, png);

        Assert.Equal(Stb(png.ToArray()), Fast(png.ToArray()));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Undoes_every_png_row_filter_exactly(byte filter)
    {
        const int width = 21, height = 13;
        var pattern = ImageFiles.Pattern(width, height, seed: filter);
        var png = ImageFiles.EncodePngRaw(width, height, colorType: 2, bitDepth: 8, pattern, filter: filter, bytesPerPixel: 3);

        Assert.Equal(pattern, Fast(png));
        Assert.Equal(pattern, Stb(png));
    }

    [Fact]
    public void Matches_stb_for_palette_and_16_bit_pngs()
    {
        const int width = 9, height = 5;
        var palette = Enumerable.Range(0, 4 * 3).Select(i => (byte)(i * 20 + 3)).ToArray();
        var indices = Enumerable.Range(0, width * height).Select(i => (byte)(i % 4)).ToArray();
        var palettePng = ImageFiles.EncodePngRaw(width, height, colorType: 3, bitDepth: 8, indices, palette);
        var deep = Enumerable.Range(0, width * height * 6).Select(i => (byte)(i * 7)).ToArray();
        var deepPng = ImageFiles.EncodePngRaw(width, height, colorType: 2, bitDepth: 16, deep);

        Assert.Equal(Stb(palettePng), Fast(palettePng));
        Assert.Equal(Stb(deepPng), Fast(deepPng));
    }

    [Fact]
    public void Leaves_interlaced_and_low_bit_depth_pngs_to_stb()
    {
        var interlaced = ImageFiles.EncodePngRaw(4, 4, colorType: 2, bitDepth: 8, new byte[4 * 4 * 3], interlace: 1);
        var oneBit = ImageFiles.EncodePngRaw(8, 2, colorType: 0, bitDepth: 1, new byte[2]);

        Assert.Null(PngDecoder.TryDecode(interlaced, interlaced.Length, out _, out _));
        Assert.Null(PngDecoder.TryDecode(oneBit, oneBit.Length, out _, out _));
    }

    [Fact]
    public void Refuses_a_palette_index_beyond_the_palette_and_a_bad_zlib_checksum()
    {
        var outOfRange = ImageFiles.EncodePngRaw(2, 1, colorType: 3, bitDepth: 8, [0, 5], palette: [1, 2, 3]);
        var png = ImageFiles.Png(10, 10, seed: 1);
        var idatEnd = png.Length - 12 - 4;
        png[idatEnd - 1] ^= 0xFF;

        Assert.Throws<InvalidDataException>(() => PngDecoder.TryDecode(outOfRange, outOfRange.Length, out _, out _));
        Assert.Throws<InvalidDataException>(() => PngDecoder.TryDecode(png, png.Length, out _, out _));
    }
}
