using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Augmentation;

/// <summary>
/// Image operations on float tensors [C, H, W] with values in [0, 1], following torchvision's
/// tensor implementations (<c>transforms/functional_tensor.py</c>) so that results match it.
/// Colour operations expect C = 3.
/// </summary>
public static class ImageOps
{
    /// <summary>ImageNet channel means (timm's IMAGENET_DEFAULT_MEAN), used by DINOv2's normalisation.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet channel standard deviations.</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>
    /// Brings an image to float32 RGB [3, H, W] in [0, 1]: [H, W] and [1, H, W] grayscale images are
    /// replicated to three channels, uint8 images are divided by 255.
    /// </summary>
    public static Tensor ToRgb(Tensor image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var scope = torch.NewDisposeScope();
        var x = image.dim() switch
        {
            2 => image.unsqueeze(0),
            3 => image,
            _ => throw new ArgumentException($"must be [H, W] or [C, H, W], got shape [{string.Join(", ", image.shape)}]", nameof(image)),
        };
        if (x.shape[0] != 1 && x.shape[0] != 3)
            throw new ArgumentException($"must have 1 or 3 channels, got {x.shape[0]} (shape [{string.Join(", ", image.shape)}])", nameof(image));
        if (x.shape[1] == 0 || x.shape[2] == 0)
            throw new ArgumentException($"is empty (shape [{string.Join(", ", image.shape)}])", nameof(image));
        x = x.dtype switch
        {
            ScalarType.Byte => x.to(ScalarType.Float32).DividedBy(255.0),
            ScalarType.Float32 => x,
            ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16 => x.to(ScalarType.Float32),
            _ => throw new ArgumentException($"must be uint8 or floating point, got {x.dtype}", nameof(image)),
        };
        if (x.shape[0] == 1)
            x = x.expand(3, -1, -1);
        return x.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// torchvision's <c>RandomResizedCrop.get_params</c>: up to 10 tries at a crop of area share in
    /// <paramref name="scale"/> and log-uniform aspect ratio w/h in <paramref name="ratio"/>, else a
    /// central crop with the ratio clamped.
    /// </summary>
    public static CropBox RandomResizedCropBox(int height, int width, (double Min, double Max) scale, (double Min, double Max) ratio, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (height <= 0 || width <= 0) throw new ArgumentOutOfRangeException(nameof(height), $"image size {height}×{width} must be positive");
        var area = (double)height * width;
        var logRatioMin = Math.Log(ratio.Min);
        var logRatioMax = Math.Log(ratio.Max);
        for (var attempt = 0; attempt < 10; attempt++)
        {
            var targetArea = area * Uniform(random, scale.Min, scale.Max);
            var aspect = Math.Exp(Uniform(random, logRatioMin, logRatioMax));
            var w = (int)Math.Round(Math.Sqrt(targetArea * aspect));
            var h = (int)Math.Round(Math.Sqrt(targetArea / aspect));
            if (w > 0 && w <= width && h > 0 && h <= height)
            {
                var top = random.Next(0, height - h + 1);
                var left = random.Next(0, width - w + 1);
                return new CropBox(top, left, h, w);
            }
        }

        var inRatio = (double)width / height;
        int cw, ch;
        if (inRatio < ratio.Min)
        {
            cw = width;
            ch = (int)Math.Round(cw / ratio.Min);
        }
        else if (inRatio > ratio.Max)
        {
            ch = height;
            cw = (int)Math.Round(ch * ratio.Max);
        }
        else
        {
            cw = width;
            ch = height;
        }
        return new CropBox((height - ch) / 2, (width - cw) / 2, ch, cw);
    }

    /// <summary>Crops <paramref name="box"/> and resizes it to size × size with antialiased bicubic interpolation, clamped to [0, 1].</summary>
    public static Tensor ResizedCrop(Tensor image, CropBox box, int size)
    {
        CheckImage(image, nameof(image));
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "must be positive");
        if (box.Top < 0 || box.Left < 0 || box.Height <= 0 || box.Width <= 0 || box.Top + box.Height > image.shape[1] || box.Left + box.Width > image.shape[2])
            throw new ArgumentOutOfRangeException(nameof(box), box, $"does not fit in an image of {image.shape[1]}×{image.shape[2]}");

        using var scope = torch.NewDisposeScope();
        var crop = image.narrow(1, box.Top, box.Height).narrow(2, box.Left, box.Width).unsqueeze(0);
        var resized = nn.functional.interpolate(crop, new long[] { size, size }, mode: InterpolationMode.Bicubic, align_corners: false, antialias: true);
        // Bicubic overshoots; PIL, which DINOv2 uses, clamps to the pixel range.
        return resized.squeeze(0).Clamped(0.0, 1.0).MoveToOuterDisposeScope();
    }

    /// <summary>Mirrors the image left-right.</summary>
    public static Tensor HorizontalFlip(Tensor image)
    {
        CheckImage(image, nameof(image));
        return image.flip(-1);
    }

    /// <summary>factor · image, clamped (torchvision <c>adjust_brightness</c>).</summary>
    public static Tensor AdjustBrightness(Tensor image, double factor)
    {
        CheckRgb(image, nameof(image));
        if (!(factor >= 0)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "must not be negative");
        return image.Times(factor).Clamped(0.0, 1.0);
    }

    /// <summary>Blends with the mean gray level of the image (torchvision <c>adjust_contrast</c>).</summary>
    public static Tensor AdjustContrast(Tensor image, double factor)
    {
        CheckRgb(image, nameof(image));
        if (!(factor >= 0)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "must not be negative");
        using var scope = torch.NewDisposeScope();
        var mean = Luma(image).mean();
        return Blend(image, mean, factor).MoveToOuterDisposeScope();
    }

    /// <summary>Blends with the grayscale image (torchvision <c>adjust_saturation</c>).</summary>
    public static Tensor AdjustSaturation(Tensor image, double factor)
    {
        CheckRgb(image, nameof(image));
        if (!(factor >= 0)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "must not be negative");
        using var scope = torch.NewDisposeScope();
        return Blend(image, Luma(image), factor).MoveToOuterDisposeScope();
    }

    /// <summary>Shifts the hue by <paramref name="hueFactor"/> turns, in [−0.5, 0.5] (torchvision <c>adjust_hue</c>).</summary>
    public static Tensor AdjustHue(Tensor image, double hueFactor)
    {
        CheckRgb(image, nameof(image));
        if (!(hueFactor >= -0.5 && hueFactor <= 0.5)) throw new ArgumentOutOfRangeException(nameof(hueFactor), hueFactor, "must be in [-0.5, 0.5]");
        using var scope = torch.NewDisposeScope();
        var hsv = RgbToHsv(image);
        var h = hsv[0].Plus(hueFactor).Remainder(1.0);
        var shifted = torch.stack(new[] { h, hsv[1], hsv[2] });
        return HsvToRgb(shifted).MoveToOuterDisposeScope();
    }

    /// <summary>ITU-R 601 luma (0.2989 R + 0.587 G + 0.114 B) replicated to three channels.</summary>
    public static Tensor Grayscale(Tensor image)
    {
        CheckRgb(image, nameof(image));
        using var scope = torch.NewDisposeScope();
        return Luma(image).expand(3, -1, -1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Gaussian blur with a kernelSize × kernelSize kernel and reflect padding (torchvision <c>gaussian_blur</c>).</summary>
    public static Tensor GaussianBlur(Tensor image, int kernelSize, double sigma)
    {
        CheckImage(image, nameof(image));
        if (kernelSize <= 0 || kernelSize % 2 == 0) throw new ArgumentOutOfRangeException(nameof(kernelSize), kernelSize, "must be odd and positive");
        if (!(sigma > 0)) throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "must be positive");
        var pad = kernelSize / 2;
        if (image.shape[1] <= pad || image.shape[2] <= pad)
            throw new ArgumentException($"of {image.shape[1]}×{image.shape[2]} is too small for a {kernelSize}×{kernelSize} blur with reflect padding", nameof(image));

        using var scope = torch.NewDisposeScope();
        var channels = image.shape[0];
        var half = (kernelSize - 1) * 0.5;
        var x = torch.linspace(-half, half, kernelSize, dtype: ScalarType.Float32, device: image.device);
        var pdf = x.DividedBy(sigma).Power(2).Times(-0.5).exp();
        var kernel = pdf / pdf.sum();
        var padded = nn.functional.pad(image.unsqueeze(0), new long[] { pad, pad, pad, pad }, PaddingModes.Reflect);
        // The 2-D Gaussian kernel is the outer product of two 1-D kernels: two 1-D passes give the same result.
        var horizontal = nn.functional.conv2d(padded, kernel.view(1, 1, 1, kernelSize).expand(channels, 1, 1, kernelSize), groups: channels);
        var blurred = nn.functional.conv2d(horizontal, kernel.view(1, 1, kernelSize, 1).expand(channels, 1, kernelSize, 1), groups: channels);
        return blurred.squeeze(0).MoveToOuterDisposeScope();
    }

    /// <summary>Inverts (1 − x) every value ≥ <paramref name="threshold"/> (torchvision <c>solarize</c>).</summary>
    public static Tensor Solarize(Tensor image, double threshold)
    {
        CheckImage(image, nameof(image));
        using var scope = torch.NewDisposeScope();
        var inverted = image.SubtractedFrom(1.0);
        return torch.where(image.AtLeast(threshold), inverted, image).MoveToOuterDisposeScope();
    }

    /// <summary>(x − mean[c]) / std[c] per channel.</summary>
    public static Tensor Normalize(Tensor image, IReadOnlyList<float> mean, IReadOnlyList<float> std)
    {
        CheckImage(image, nameof(image));
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Count != image.shape[0] || std.Count != image.shape[0])
            throw new ArgumentException($"mean and std need {image.shape[0]} values, got {mean.Count} and {std.Count}", nameof(mean));
        if (std.Any(s => !(s > 0)))
            throw new ArgumentOutOfRangeException(nameof(std), "every std must be positive");
        using var scope = torch.NewDisposeScope();
        var m = torch.tensor(mean.ToArray(), device: image.device).view(-1, 1, 1);
        var s = torch.tensor(std.ToArray(), device: image.device).view(-1, 1, 1);
        return ((image - m) / s).MoveToOuterDisposeScope();
    }

    private static Tensor Luma(Tensor image) =>
        image[0].Times(0.2989).Plus(image[1].Times(0.587)).Plus(image[2].Times(0.114)).unsqueeze(0);

    private static Tensor Blend(Tensor image, Tensor other, double ratio) =>
        image.Times(ratio).Plus(other.Times(1.0 - ratio)).Clamped(0.0, 1.0);

    private static Tensor RgbToHsv(Tensor image)
    {
        var r = image[0];
        var g = image[1];
        var b = image[2];
        var maxc = image.amax(new long[] { 0 });
        var minc = image.amin(new long[] { 0 });
        // Where max = min, hue and saturation are 0; replacing the divisors by 1 avoids NaN there.
        var eqc = maxc == minc;
        var cr = maxc - minc;
        var ones = torch.ones_like(maxc);
        var s = cr / torch.where(eqc, ones, maxc);
        var crDivisor = torch.where(eqc, ones, cr);
        var rc = (maxc - r) / crDivisor;
        var gc = (maxc - g) / crDivisor;
        var bc = (maxc - b) / crDivisor;
        var hr = (maxc == r).to(image.dtype) * (bc - gc);
        var hg = ((maxc == g) & (maxc != r)).to(image.dtype) * (rc.Plus(2.0) - bc);
        var hb = ((maxc != g) & (maxc != r)).to(image.dtype) * (gc.Plus(4.0) - rc);
        var h = hr.Plus(hg).Plus(hb).DividedBy(6.0).Plus(1.0).Fmod(1.0);
        return torch.stack(new[] { h, s, maxc });
    }

    private static Tensor HsvToRgb(Tensor hsv)
    {
        var h = hsv[0];
        var s = hsv[1];
        var v = hsv[2];
        var i = h.Times(6.0).floor();
        var f = h.Times(6.0) - i;
        var sector = i.to(ScalarType.Int64).Remainder(6);
        var p = (v * s.SubtractedFrom(1.0)).Clamped(0.0, 1.0);
        var q = (v * (s * f).SubtractedFrom(1.0)).Clamped(0.0, 1.0);
        var t = (v * (s * f.SubtractedFrom(1.0)).SubtractedFrom(1.0)).Clamped(0.0, 1.0);
        var red = torch.stack(new[] { v, q, p, p, t, v });
        var green = torch.stack(new[] { t, v, v, q, p, p });
        var blue = torch.stack(new[] { p, p, t, v, v, q });
        var table = torch.stack(new[] { red, green, blue });
        var index = sector.unsqueeze(0).unsqueeze(0).expand(3, 1, -1, -1);
        return table.gather(1, index).squeeze(1);
    }

    private static double Uniform(Random random, double a, double b) => a + (b - a) * random.NextDouble();

    private static void CheckImage(Tensor image, string name)
    {
        ArgumentNullException.ThrowIfNull(image, name);
        if (image.dim() != 3 || !image.is_floating_point())
            throw new ArgumentException($"must be a floating-point image [C, H, W], got {image.dtype} [{string.Join(", ", image.shape)}]", name);
    }

    private static void CheckRgb(Tensor image, string name)
    {
        CheckImage(image, name);
        if (image.shape[0] != 3)
            throw new ArgumentException($"must have 3 channels, got shape [{string.Join(", ", image.shape)}]", name);
    }
}
