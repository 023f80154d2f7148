using System.Buffers.Binary;
using StbImageSharp;

namespace NvDinoPipeline.Datasets.Images;

/// <summary>Why a file is not decoded. Staging reports it per file; inference and calibration name it in their errors.</summary>
public enum ImageRefusal
{
    None,
    NotAnImage,
    UnsupportedFormat,
    Truncated,
    Corrupt,
    AbsurdDimensions,
}

/// <summary>The largest image a caller decodes, and the settings that say so (named in the refusal).</summary>
/// <param name="MaxSide">Longest width or height; null for no limit of its own (the pixel limit still applies).</param>
public sealed record ImageLimits(long? MaxSide, long MaxPixels, string MaxSideSetting, string MaxPixelsSetting)
{
    /// <summary>Only a pixel limit, named by <paramref name="maxPixelsSetting"/>.</summary>
    public static ImageLimits Pixels(long maxPixels, string maxPixelsSetting) => new(null, maxPixels, "", maxPixelsSetting);
}

/// <summary>The outcome of decoding one file: an RGB image (<see cref="DecodedImage.Channels"/> 3), or the reason it is refused.</summary>
public readonly record struct ImageDecodeResult(DecodedImage? Image, ImageFormat Format, ImageRefusal Refusal, string Detail)
{
    public static ImageDecodeResult Ok(DecodedImage image, ImageFormat format) => new(image, format, ImageRefusal.None, "");

    public static ImageDecodeResult Refuse(ImageRefusal refusal, string detail) => new(null, default, refusal, detail);
}

/// <summary>
/// The one decoder of encoded image files, used by staging, inference and engine calibration. The header is
/// read first and absurd dimensions are refused before any pixel buffer exists; truncation that the lenient stb
/// decoders would paper over with grey pixels (JPEG, BMP, GIF, uncompressed TGA) is detected from the container
/// structure.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Which decoder JPEGs go through on this machine; the two differ in the last bit of some pixels, so a
    /// staging is only reused from the cache by a worker with the same decoder.</summary>
    public static string JpegDecoderName => TurboJpeg.IsAvailable ? "libjpeg-turbo" : "StbImageSharp";

    /// <summary>False when libjpeg-turbo is not installed and JPEGs go through the slower managed decoder.</summary>
    public static bool IsJpegAccelerated => TurboJpeg.IsAvailable;

    /// <summary>The shared library that accelerates JPEG decoding, for the message that says it is missing.</summary>
    public static string JpegLibraryName => TurboJpeg.LibraryName;

    /// <summary>Decodes <paramref name="length"/> bytes of <paramref name="buffer"/>; <paramref name="path"/> names the
    /// file (its extension is how TGA, which has no signature, is recognised) and is the decoded image's path.</summary>
    public static ImageDecodeResult Decode(string path, byte[] buffer, int length, ImageLimits limits)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ArgumentNullException.ThrowIfNull(limits);
        var data = buffer.AsSpan(0, length);
        if (length == 0)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.NotAnImage, "the file is empty");
        }
        var format = ImageFormats.Detect(data, path, out var refused);
        if (format is null)
        {
            return refused is null
                ? ImageDecodeResult.Refuse(ImageRefusal.NotAnImage, $"not a {ImageFormats.AcceptedList} file (starts with {Convert.ToHexString(data[..Math.Min(8, length)])})")
                : ImageDecodeResult.Refuse(ImageRefusal.UnsupportedFormat, $"{refused} images are not read; accepted are {ImageFormats.AcceptedList}");
        }

        if (!ImageHeader.TryRead(format.Value, data, out var width, out var height))
        {
            return ImageDecodeResult.Refuse(ImageRefusal.Corrupt, $"the {format.Value.Name()} header cannot be read");
        }
        if (width <= 0 || height <= 0)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.Corrupt, $"the {format.Value.Name()} header claims {width}×{height} pixels");
        }
        if (limits.MaxSide is { } maxSide && (width > maxSide || height > maxSide))
        {
            return ImageDecodeResult.Refuse(ImageRefusal.AbsurdDimensions,
                $"the header claims {width}×{height} pixels; {limits.MaxSideSetting} is {maxSide}");
        }
        if ((Int128)width * height > limits.MaxPixels)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.AbsurdDimensions,
                $"the header claims {width}×{height} = {(Int128)width * height} pixels; {limits.MaxPixelsSetting} is {limits.MaxPixels}");
        }
        if (FindTruncation(format.Value, data, width, height) is { } truncation)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.Truncated, truncation);
        }

        byte[]? pixels = null;
        int decodedWidth = 0, decodedHeight = 0;
        try
        {
            pixels = format switch
            {
                ImageFormat.Png => PngDecoder.TryDecode(buffer, length, out decodedWidth, out decodedHeight),
                ImageFormat.Bmp => BmpDecoder.TryDecode(buffer, length, out decodedWidth, out decodedHeight),
                _ => null,
            };
            if (format == ImageFormat.Jpeg && TurboJpeg.IsAvailable)
            {
                var turbo = TurboJpeg.Decode(buffer, length, (int)width, (int)height);
                if (turbo.Error is { } error)
                {
                    return ImageDecodeResult.Refuse(ImageRefusal.Corrupt, $"the JPEG data cannot be decoded: {error}");
                }
                (pixels, decodedWidth, decodedHeight) = (turbo.Rgb, turbo.Width, turbo.Height);
            }
            if (pixels is null)
            {
                // The managed decoder is the one for GIF and TGA, for CMYK JPEGs (which libjpeg-turbo's TurboJPEG API
                // does not convert to RGB) and for every JPEG where libjpeg-turbo is not installed.
                var decoded = ImageResult.FromStream(new MemoryStream(buffer, 0, length, writable: false), ColorComponents.RedGreenBlue);
                (pixels, decodedWidth, decodedHeight) = (decoded?.Data, decoded?.Width ?? 0, decoded?.Height ?? 0);
            }
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.Corrupt, $"the {format.Value.Name()} data cannot be decoded: {exception.Message}");
        }
        if (pixels is null || decodedWidth != width || decodedHeight != height || pixels.Length < width * height * 3)
        {
            return ImageDecodeResult.Refuse(ImageRefusal.Corrupt, $"the {format.Value.Name()} data decoded to a different size than its header claims");
        }
        if (pixels.Length != width * height * 3)
        {
            pixels = pixels[..(int)(width * height * 3)];
        }
        return ImageDecodeResult.Ok(new DecodedImage(pixels, decodedWidth, decodedHeight, channels: 3, path), format.Value);
    }

    /// <summary>Why the file is cut short, or null when its structure is complete.</summary>
    private static string? FindTruncation(ImageFormat format, ReadOnlySpan<byte> data, long width, long height) => format switch
    {
        ImageFormat.Jpeg => JpegTruncation(data),
        ImageFormat.Png => data.LastIndexOf("IEND"u8) < 0 ? "the PNG has no IEND chunk: the file is cut short" : null,
        ImageFormat.Bmp => BmpTruncation(data),
        ImageFormat.Gif => data.TrimEnd((byte)0).EndsWith([(byte)0x3B]) ? null : "the GIF has no trailer byte: the file is cut short",
        ImageFormat.Tga => TgaTruncation(data, width, height),
        _ => null,
    };

    private static string? JpegTruncation(ReadOnlySpan<byte> data)
    {
        // Entropy-coded data escapes 0xFF as FF 00, so FF DA and FF D9 only ever occur as markers. The main image's
        // last scan (after any EXIF thumbnail) must be followed by an end-of-image marker.
        var lastScan = data.LastIndexOf([(byte)0xFF, (byte)0xDA]);
        if (lastScan < 0)
        {
            return "the JPEG has no scan data";
        }
        return data[lastScan..].IndexOf([(byte)0xFF, (byte)0xD9]) < 0
            ? "the JPEG has no end-of-image marker after its last scan: the file is cut short"
            : null;
    }

    private static string? BmpTruncation(ReadOnlySpan<byte> data)
    {
        var declaredSize = BinaryPrimitives.ReadUInt32LittleEndian(data[2..]);
        if (declaredSize > data.Length)
        {
            return $"the BMP header declares {declaredSize} bytes but the file has {data.Length}";
        }
        if (data.Length < 34 || BinaryPrimitives.ReadUInt32LittleEndian(data[14..]) < 40)
        {
            return null;
        }
        var pixelOffset = BinaryPrimitives.ReadUInt32LittleEndian(data[10..]);
        var width = (long)BinaryPrimitives.ReadInt32LittleEndian(data[18..]);
        var height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(data[22..]));
        var bitsPerPixel = BinaryPrimitives.ReadUInt16LittleEndian(data[28..]);
        var compression = BinaryPrimitives.ReadUInt32LittleEndian(data[30..]);
        if (compression is not (0 or 3 or 6))
        {
            return null;
        }
        var rowBytes = (bitsPerPixel * width + 31) / 32 * 4;
        var needed = pixelOffset + rowBytes * height;
        return needed > data.Length ? $"the BMP pixel data needs {needed} bytes but the file has {data.Length}" : null;
    }

    private static string? TgaTruncation(ReadOnlySpan<byte> data, long width, long height)
    {
        var imageType = data[2];
        if (imageType is not (1 or 2 or 3))
        {
            return null;
        }
        var idLength = data[0];
        var colorMapLength = BinaryPrimitives.ReadUInt16LittleEndian(data[5..]);
        var colorMapEntryBits = data[7];
        var bitsPerPixel = data[16];
        var needed = 18L + idLength + (data[1] == 1 ? colorMapLength * ((colorMapEntryBits + 7) / 8) : 0)
            + width * height * ((bitsPerPixel + 7) / 8);
        return needed > data.Length ? $"the TGA pixel data needs {needed} bytes but the file has {data.Length}" : null;
    }
}
