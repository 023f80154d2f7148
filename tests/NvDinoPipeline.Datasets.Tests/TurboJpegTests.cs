using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Testing;
using StbImageSharp;

namespace NvDinoPipeline.Datasets.Tests;

/// <summary>JPEGs go through libjpeg-turbo where it is installed; scripts/test.sh installs it (Debian's libturbojpeg0).</summary>
public sealed class TurboJpegTests
{
    [Fact]
    public void Libjpeg_turbo_is_installed_where_the_tests_run()
    {
        Assert.True(TurboJpeg.IsAvailable,
            $"{TurboJpeg.LibraryName} cannot be loaded: install Debian's libturbojpeg0 (scripts/test.sh does), or these tests only cover the managed decoder.");
        Assert.Equal("libjpeg-turbo", ImageDecoder.JpegDecoderName);
    }

    [Fact]
    public void Decodes_a_jpeg_to_nearly_the_pixels_the_managed_decoder_gives()
    {
        var jpeg = ImageFiles.Jpeg(48, 40, seed: 6, quality: 90);

        var turbo = TurboJpeg.Decode(jpeg, jpeg.Length, 48, 40);
        var stb = ImageResult.FromMemory(jpeg, ColorComponents.RedGreenBlue);

        Assert.Null(turbo.Error);
        Assert.Equal((48, 40), (turbo.Width, turbo.Height));
        Assert.Equal(stb.Data.Length, turbo.Rgb!.Length);
        // Both are accurate integer IDCTs; chroma upsampling differs in rounding only.
        Assert.InRange(ImageFiles.MeanAbsoluteError(stb.Data, turbo.Rgb), 0, 1.5);
        Assert.InRange(ImageFiles.MeanAbsoluteError(ImageFiles.Smooth(48, 40, seed: 6), turbo.Rgb), 0, 3);
    }

    [Fact]
    public void Refuses_a_frame_size_other_than_the_one_the_header_check_read_without_allocating_it()
    {
        var jpeg = ImageFiles.Jpeg(48, 40, seed: 6);

        var result = TurboJpeg.Decode(jpeg, jpeg.Length, 4800, 4000);

        Assert.Null(result.Rgb);
        Assert.Contains("reads 48×40 pixels where the header check read 4800×4000", result.Error);
    }

    [Fact]
    public void Reports_a_jpeg_with_a_broken_huffman_table_as_corrupt_with_the_decoders_reason()
    {
        var jpeg = ImageFiles.Jpeg(32, 32, seed: 2).ToArray();
        // Every code-length count of the first Huffman table set to 255: no valid table can be built from it.
        var dht = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC4]);
        Assert.True(dht > 0);
        jpeg.AsSpan(dht + 5, 16).Fill(0xFF);

        var result = ImageDecoder.Decode("broken.jpg", jpeg, jpeg.Length, new ImageLimits(16384, 100_000_000, "MaxImageSide", "MaxImagePixels"));

        Assert.Null(result.Image);
        Assert.Equal(ImageRefusal.Corrupt, result.Refusal);
        Assert.StartsWith("the JPEG data cannot be decoded: ", result.Detail);
        Assert.True(result.Detail.Length > "the JPEG data cannot be decoded: ".Length + 5, result.Detail);
        // The failure leaves no broken decompressor behind for the next file.
        var good = ImageFiles.Jpeg(32, 32, seed: 2);
        Assert.Null(TurboJpeg.Decode(good, good.Length, 32, 32).Error);
    }
}
