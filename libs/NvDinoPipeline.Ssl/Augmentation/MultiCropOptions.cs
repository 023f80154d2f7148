namespace NvDinoPipeline.Ssl.Augmentation;

/// <summary>
/// DINOv2's multi-crop augmentation settings (<c>data/augmentations.py</c>, config <c>crops.*</c>);
/// defaults are NVDINOv2's: 2 global crops of 224 (scale 0.32–1) and 8 local crops of 98 (scale 0.05–0.32).
/// </summary>
public sealed record MultiCropOptions
{
    public (double Min, double Max) GlobalCropsScale { get; init; } = (0.32, 1.0);

    public (double Min, double Max) LocalCropsScale { get; init; } = (0.05, 0.32);

    public int LocalCropsNumber { get; init; } = 8;

    public int GlobalCropsSize { get; init; } = 224;

    public int LocalCropsSize { get; init; } = 98;

    /// <summary>Aspect ratio range w/h of RandomResizedCrop.</summary>
    public (double Min, double Max) CropRatio { get; init; } = (3.0 / 4.0, 4.0 / 3.0);

    public double HorizontalFlipProbability { get; init; } = 0.5;

    public double ColorJitterProbability { get; init; } = 0.8;

    public double Brightness { get; init; } = 0.4;

    public double Contrast { get; init; } = 0.4;

    public double Saturation { get; init; } = 0.2;

    public double Hue { get; init; } = 0.1;

    public double GrayscaleProbability { get; init; } = 0.2;

    public int BlurKernelSize { get; init; } = 9;

    public (double Min, double Max) BlurSigma { get; init; } = (0.1, 2.0);

    /// <summary>
    /// Blur probability of the first global crop. DINOv2's config asks for 1.0 / 0.1 / 0.5 (as DINO and
    /// BYOL); its <c>GaussianBlur</c> passes 1 − p to torchvision, so its code actually blurs with
    /// 0.0 / 0.9 / 0.5. Set those values to reproduce the released DINOv2 checkpoints' augmentation.
    /// </summary>
    public double GlobalCrop1BlurProbability { get; init; } = 1.0;

    public double GlobalCrop2BlurProbability { get; init; } = 0.1;

    public double LocalCropBlurProbability { get; init; } = 0.5;

    /// <summary>Solarisation probability of the second global crop (threshold 128/255).</summary>
    public double GlobalCrop2SolarizeProbability { get; init; } = 0.2;

    public double SolarizeThreshold { get; init; } = 128.0 / 255.0;

    public IReadOnlyList<float> Mean { get; init; } = ImageOps.ImageNetMean;

    public IReadOnlyList<float> Std { get; init; } = ImageOps.ImageNetStd;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        CheckRange(GlobalCropsScale, nameof(GlobalCropsScale), 0, 1);
        CheckRange(LocalCropsScale, nameof(LocalCropsScale), 0, 1);
        CheckRange(CropRatio, nameof(CropRatio), 0, double.PositiveInfinity);
        CheckRange(BlurSigma, nameof(BlurSigma), 0, double.PositiveInfinity);
        if (CropRatio.Min <= 0) throw new ArgumentException($"{nameof(CropRatio)} must be positive, got ({CropRatio.Min}, {CropRatio.Max})");
        if (BlurSigma.Min <= 0) throw new ArgumentException($"{nameof(BlurSigma)} must be positive, got ({BlurSigma.Min}, {BlurSigma.Max})");
        if (LocalCropsNumber < 0) throw new ArgumentException($"{nameof(LocalCropsNumber)} must not be negative, got {LocalCropsNumber}");
        if (BlurKernelSize <= 0 || BlurKernelSize % 2 == 0) throw new ArgumentException($"{nameof(BlurKernelSize)} must be odd and positive, got {BlurKernelSize}");
        var minSize = BlurKernelSize / 2 + 1;
        if (GlobalCropsSize < minSize) throw new ArgumentException($"{nameof(GlobalCropsSize)} must be at least {minSize} for a {BlurKernelSize}-pixel blur, got {GlobalCropsSize}");
        if (LocalCropsNumber > 0 && LocalCropsSize < minSize) throw new ArgumentException($"{nameof(LocalCropsSize)} must be at least {minSize} for a {BlurKernelSize}-pixel blur, got {LocalCropsSize}");
        CheckProbability(HorizontalFlipProbability, nameof(HorizontalFlipProbability));
        CheckProbability(ColorJitterProbability, nameof(ColorJitterProbability));
        CheckProbability(GrayscaleProbability, nameof(GrayscaleProbability));
        CheckProbability(GlobalCrop1BlurProbability, nameof(GlobalCrop1BlurProbability));
        CheckProbability(GlobalCrop2BlurProbability, nameof(GlobalCrop2BlurProbability));
        CheckProbability(LocalCropBlurProbability, nameof(LocalCropBlurProbability));
        CheckProbability(GlobalCrop2SolarizeProbability, nameof(GlobalCrop2SolarizeProbability));
        if (!(Brightness >= 0)) throw new ArgumentException($"{nameof(Brightness)} must not be negative, got {Brightness}");
        if (!(Contrast >= 0)) throw new ArgumentException($"{nameof(Contrast)} must not be negative, got {Contrast}");
        if (!(Saturation >= 0)) throw new ArgumentException($"{nameof(Saturation)} must not be negative, got {Saturation}");
        if (!(Hue >= 0 && Hue <= 0.5)) throw new ArgumentException($"{nameof(Hue)} must be in [0, 0.5], got {Hue}");
        if (Mean is null || Mean.Count != 3) throw new ArgumentException($"{nameof(Mean)} needs 3 values");
        if (Std is null || Std.Count != 3 || Std.Any(s => !(s > 0))) throw new ArgumentException($"{nameof(Std)} needs 3 positive values");
    }

    private static void CheckRange((double Min, double Max) range, string name, double lower, double upper)
    {
        if (!(range.Min >= lower && range.Min <= range.Max && range.Max <= upper))
            throw new ArgumentException($"{name} must satisfy {lower} ≤ min ≤ max ≤ {upper}, got ({range.Min}, {range.Max})");
    }

    private static void CheckProbability(double p, string name)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentException($"{name} must be a probability in [0, 1], got {p}");
    }
}
