namespace NvDinoPipeline.Datasets.Images;

/// <summary>The formats that are staged. StbImageSharp also reads PSD and Radiance HDR, which are refused:
/// layered documents and floating-point radiance maps are not photographs a backbone should train on.</summary>
public enum ImageFormat
{
    Jpeg,
    Png,
    Bmp,
    Gif,
    Tga,
}

public static class ImageFormats
{
    public const string AcceptedList = "JPEG, PNG, BMP, GIF (first frame), TGA";

    public static string Name(this ImageFormat format) => format switch
    {
        ImageFormat.Jpeg => "jpeg",
        ImageFormat.Png => "png",
        ImageFormat.Bmp => "bmp",
        ImageFormat.Gif => "gif",
        ImageFormat.Tga => "tga",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>
    /// The format by its signature. TGA has none, so it is recognised by its extension only: otherwise a
    /// stray binary file could pass the TGA decoder's loose header test and be staged as noise.
    /// Returns null and names a known but refused format in <paramref name="refused"/>, or leaves it null
    /// when the bytes are no image at all.
    /// </summary>
    public static ImageFormat? Detect(ReadOnlySpan<byte> data, string relativePath, out string? refused)
    {
        refused = null;
        if (data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]))
        {
            return ImageFormat.Jpeg;
        }
        if (data.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return ImageFormat.Png;
        }
        if (data.Length >= 26 && data.StartsWith("BM"u8))
        {
            return ImageFormat.Bmp;
        }
        if (data.StartsWith("GIF87a"u8) || data.StartsWith("GIF89a"u8))
        {
            return ImageFormat.Gif;
        }
        if (relativePath.EndsWith(".tga", StringComparison.OrdinalIgnoreCase) && data.Length > 18)
        {
            return ImageFormat.Tga;
        }

        refused = data switch
        {
            _ when data.StartsWith("8BPS"u8) => "Photoshop (PSD)",
            _ when data.StartsWith("#?RADIANCE"u8) || data.StartsWith("#?RGBE"u8) => "Radiance HDR",
            _ when data.Length >= 12 && data.StartsWith("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8) => "WebP",
            _ when data.StartsWith("II*\0"u8) || data.StartsWith("MM\0*"u8) => "TIFF",
            _ when data.Length >= 12 && data[4..8].SequenceEqual("ftyp"u8) && IsHeifBrand(data[8..12]) => "HEIF/AVIF",
            _ when data.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) => "JPEG 2000",
            _ when data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0x0A]) || data.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0x00, 0x0C, 0x4A, 0x58, 0x4C, 0x20]) => "JPEG XL",
            _ => null,
        };
        return null;
    }

    private static bool IsHeifBrand(ReadOnlySpan<byte> brand) =>
        brand.SequenceEqual("heic"u8) || brand.SequenceEqual("heix"u8) || brand.SequenceEqual("mif1"u8)
        || brand.SequenceEqual("avif"u8) || brand.SequenceEqual("avis"u8);
}
