using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.Staging.Output;

namespace NvDinoPipeline.Staging.Images;

/// <summary>A file that decoded into a usable image, already scaled to the staged size.</summary>
internal sealed record StagedImage(ImageFormat Format, int Width, int Height, byte[] Rgb, int StagedWidth, int StagedHeight);

/// <summary>The outcome of validating one file: a staged image, or the reason it is skipped.</summary>
internal readonly record struct DecodeResult(StagedImage? Image, SkipReason Reason, string Detail)
{
    public static DecodeResult Ok(StagedImage image) => new(image, default, "");

    public static DecodeResult Skip(SkipReason reason, string detail) => new(null, reason, detail);
}

/// <summary>Validates a file by decoding it once (<see cref="ImageDecoder"/>, within the staging limits) and scales it to the staged size.</summary>
internal sealed class ImageStager(StagingOptions options)
{
    private readonly ImageLimits _limits = new(options.MaxImageSide, options.MaxImagePixels,
        $"{StagingOptions.SectionName}:{nameof(StagingOptions.MaxImageSide)}", $"{StagingOptions.SectionName}:{nameof(StagingOptions.MaxImagePixels)}");

    public DecodeResult Decode(string relativePath, byte[] buffer, int length)
    {
        var result = ImageDecoder.Decode(relativePath, buffer, length, _limits);
        if (result.Image is not { } image)
        {
            return DecodeResult.Skip(ReasonFor(result.Refusal), result.Detail);
        }
        var (stagedWidth, stagedHeight) = ImageResizer.FitWithin(image.Width, image.Height, options.MaxSide);
        var rgb = ImageResizer.Resize(image.Pixels, image.Width, image.Height, stagedWidth, stagedHeight);
        return DecodeResult.Ok(new StagedImage(result.Format, image.Width, image.Height, rgb, stagedWidth, stagedHeight));
    }

    private static SkipReason ReasonFor(ImageRefusal refusal) => refusal switch
    {
        ImageRefusal.NotAnImage => SkipReason.NotAnImage,
        ImageRefusal.UnsupportedFormat => SkipReason.UnsupportedFormat,
        ImageRefusal.Truncated => SkipReason.Truncated,
        ImageRefusal.Corrupt => SkipReason.Corrupt,
        ImageRefusal.AbsurdDimensions => SkipReason.AbsurdDimensions,
        _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, null),
    };
}
