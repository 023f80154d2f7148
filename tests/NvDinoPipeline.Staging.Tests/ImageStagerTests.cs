using System.Buffers.Binary;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Staging.Images;
using NvDinoPipeline.Staging.Output;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.Staging.Tests;

public sealed class ImageStagerTests
{
    private readonly ImageStager _decoder = new(new StagingOptions { MaxSide = 32 });

    private DecodeResult Decode(string name, byte[] data) => _decoder.Decode(name, data, data.Length);

    [Fact]
    public void Decodes_png_and_bmp_to_the_same_pixels_they_were_made_from()
    {
        var pattern = ImageFiles.Pattern(17, 11, seed: 3);

        var png = Decode("a.png", ImageFiles.EncodePng(pattern, 17, 11));
        var bmp = Decode("a.bmp", ImageFiles.EncodeBmp(pattern, 17, 11));

        Assert.Equal(ImageFormat.Png, png.Image!.Format);
        Assert.Equal(ImageFormat.Bmp, bmp.Image!.Format);
        Assert.Equal(pattern, png.Image.Rgb);
        Assert.Equal(pattern, bmp.Image.Rgb);
        Assert.Equal((17, 11, 17, 11), (png.Image.Width, png.Image.Height, png.Image.StagedWidth, png.Image.StagedHeight));
    }

    [Fact]
    public void Decodes_a_jpeg_to_pixels_close_to_what_was_encoded()
    {
        var result = Decode("photo.jpg", ImageFiles.Jpeg(24, 16, seed: 4));

        Assert.Equal(ImageFormat.Jpeg, result.Image!.Format);
        Assert.Equal((24, 16), (result.Image.Width, result.Image.Height));
        Assert.InRange(ImageFiles.MeanAbsoluteError(ImageFiles.Smooth(24, 16, seed: 4), result.Image.Rgb), 0, 3);
    }

    [Fact]
    public void Reports_a_real_jpeg_cut_short_as_truncated()
    {
        var jpeg = ImageFiles.Jpeg(64, 64, seed: 4);

        var result = Decode("cut.jpg", jpeg[..(jpeg.Length * 2 / 3)]);

        Assert.Equal(SkipReason.Truncated, result.Reason);
    }

    [Fact]
    public void Scales_an_image_larger_than_MaxSide_so_its_longer_side_fits()
    {
        var result = Decode("tall.png", ImageFiles.Png(50, 200, seed: 1));

        Assert.Equal((50, 200), (result.Image!.Width, result.Image.Height));
        Assert.Equal((8, 32), (result.Image.StagedWidth, result.Image.StagedHeight));
        Assert.Equal(8 * 32 * 3, result.Image.Rgb.Length);
    }

    [Fact]
    public void Refuses_absurd_dimensions_from_the_header_before_decoding()
    {
        var result = Decode("huge.png", ImageFiles.PngClaiming(100_000, 100_000));

        Assert.Null(result.Image);
        Assert.Equal(SkipReason.AbsurdDimensions, result.Reason);
        Assert.Contains("100000×100000", result.Detail);
        Assert.Contains("MaxImageSide", result.Detail);
    }

    [Fact]
    public void Refuses_a_picture_within_the_side_limit_but_above_the_pixel_limit()
    {
        var decoder = new ImageStager(new StagingOptions { MaxImagePixels = 1_000_000 });

        var data = ImageFiles.PngClaiming(2000, 2000);
        var result = decoder.Decode("wide.png", data, data.Length);

        Assert.Equal(SkipReason.AbsurdDimensions, result.Reason);
        Assert.Contains("MaxImagePixels", result.Detail);
    }

    [Fact]
    public void Reports_a_png_cut_short_as_truncated()
    {
        var png = ImageFiles.Png(30, 30, seed: 2);

        var result = Decode("cut.png", png[..(png.Length / 2)]);

        Assert.Equal(SkipReason.Truncated, result.Reason);
    }

    [Fact]
    public void Reports_a_bmp_cut_short_as_truncated_although_its_decoder_would_pad_it()
    {
        var bmp = ImageFiles.Bmp(30, 30, seed: 2);

        var result = Decode("cut.bmp", bmp[..(bmp.Length - 100)]);

        Assert.Equal(SkipReason.Truncated, result.Reason);
        Assert.Contains("BMP", result.Detail);
    }

    [Fact]
    public void Reports_a_jpeg_without_end_of_image_marker_as_truncated()
    {
        byte[] jpeg =
        [
            0xFF, 0xD8,
            0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01,
            0xFF, 0xDA, 0x00, 0x0C, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03, 0x11, 0x00, 0x3F, 0x00,
            0x12, 0x34, 0x56, 0x78,
        ];

        var result = Decode("cut.jpg", jpeg);

        Assert.Equal(SkipReason.Truncated, result.Reason);
        Assert.Contains("end-of-image", result.Detail);
        Assert.True(ImageHeader.TryRead(ImageFormat.Jpeg, jpeg, out var width, out var height));
        Assert.Equal((32, 16), (width, height));
    }

    [Fact]
    public void Reports_undecodable_png_data_as_corrupt()
    {
        var png = ImageFiles.Png(20, 20, seed: 1);
        Array.Fill(png, (byte)0x55, 45, png.Length - 45 - 12);

        var result = Decode("corrupt.png", png);

        Assert.Equal(SkipReason.Corrupt, result.Reason);
    }

    [Theory]
    [InlineData("RIFF\0\0\0\0WEBPVP8 ", "WebP")]
    [InlineData("8BPS\0\u0001\0\0\0\0\0\0", "Photoshop")]
    [InlineData("#?RADIANCE\nFORMAT", "Radiance HDR")]
    [InlineData("II*\0\u0008\0\0\0", "TIFF")]
    public void Refuses_known_formats_it_does_not_stage_by_name(string start, string name)
    {
        var result = Decode("x.img", [.. System.Text.Encoding.Latin1.GetBytes(start), .. new byte[32]]);

        Assert.Equal(SkipReason.UnsupportedFormat, result.Reason);
        Assert.Contains(name, result.Detail);
        Assert.Contains("JPEG, PNG, BMP", result.Detail);
    }

    [Fact]
    public void Calls_text_and_empty_files_not_an_image()
    {
        Assert.Equal(SkipReason.NotAnImage, Decode("notes.png", "hello"u8.ToArray()).Reason);
        Assert.Equal(SkipReason.NotAnImage, _decoder.Decode("empty.png", [], 0).Reason);
    }

    [Fact]
    public void Decodes_an_uncompressed_tga_recognised_by_its_extension_only()
    {
        var pattern = ImageFiles.Pattern(6, 4, seed: 5);
        var tga = new byte[18 + 6 * 4 * 3];
        tga[2] = 2;
        BinaryPrimitives.WriteUInt16LittleEndian(tga.AsSpan(12), 6);
        BinaryPrimitives.WriteUInt16LittleEndian(tga.AsSpan(14), 4);
        tga[16] = 24;
        tga[17] = 0x20;
        for (var i = 0; i < 6 * 4; i++)
        {
            tga[18 + i * 3] = pattern[i * 3 + 2];
            tga[18 + i * 3 + 1] = pattern[i * 3 + 1];
            tga[18 + i * 3 + 2] = pattern[i * 3];
        }

        Assert.Equal(pattern, Decode("a.tga", tga).Image!.Rgb);
        Assert.Equal(SkipReason.NotAnImage, Decode("a.bin", tga).Reason);
        Assert.Equal(SkipReason.Truncated, Decode("cut.tga", tga[..40]).Reason);
    }
}
