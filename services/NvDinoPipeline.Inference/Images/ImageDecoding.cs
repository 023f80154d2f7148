using StbImageSharp;

namespace NvDinoPipeline.Inference.Images;

/// <summary>Decodes an encoded image file (JPEG, PNG, BMP, GIF, TGA, PSD, HDR) to RGB, refusing absurd sizes before decoding.</summary>
public static class ImageDecoding
{
    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".psd", ".hdr",
    };

    /// <summary>True for a file name with an image extension.</summary>
    public static bool IsImageName(string name) => Extensions.Contains(System.IO.Path.GetExtension(name));

    /// <exception cref="UnreadableImageException">The data is empty, not an image, too large or corrupt.</exception>
    public static (byte[] Rgb, int Width, int Height) Decode(byte[] data, string path, long maxPixels)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0)
        {
            throw new UnreadableImageException(path, "the file is empty");
        }
        ImageInfo? info;
        try
        {
            info = ImageInfo.FromStream(new MemoryStream(data, writable: false));
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            info = null;
        }
        if (info is not { } header)
        {
            throw new UnreadableImageException(path,
                $"not a JPEG, PNG, BMP, GIF, TGA, PSD or HDR image (starts with {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))})");
        }
        if (header.Width <= 0 || header.Height <= 0 || (long)header.Width * header.Height > maxPixels)
        {
            throw new UnreadableImageException(path, $"the header claims {header.Width}×{header.Height} pixels; at most {maxPixels} pixels are decoded");
        }
        ImageResult? image;
        try
        {
            image = ImageResult.FromMemory(data, ColorComponents.RedGreenBlue);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            throw new UnreadableImageException(path, $"the image data cannot be decoded: {exception.Message}", exception);
        }
        if (image?.Data is null || image.Width != header.Width || image.Height != header.Height || image.Data.Length < image.Width * image.Height * 3)
        {
            throw new UnreadableImageException(path, "the image data decoded to a different size than its header claims");
        }
        return (image.Data, image.Width, image.Height);
    }
}
