using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Augmentation;

/// <summary>
/// DINOv2's <c>DataAugmentationDINO</c> on tensors: per crop a RandomResizedCrop (bicubic) and a
/// horizontal flip, colour jitter with probability 0.8 (random order of brightness, contrast,
/// saturation, hue), grayscale with probability 0.2, Gaussian blur (per-crop probabilities), solarisation
/// on the second global crop, and ImageNet normalisation. Deterministic for a given <see cref="Random"/> state.
/// </summary>
public sealed class MultiCropAugmentation
{
    public MultiCropAugmentation(MultiCropOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    public MultiCropOptions Options { get; }

    /// <summary>
    /// Two global crops and <see cref="MultiCropOptions.LocalCropsNumber"/> local crops of one image.
    /// </summary>
    /// <param name="image">[C, H, W] or [H, W], uint8 or float in [0, 1]; grayscale is replicated to RGB.</param>
    /// <param name="random">Source of every random choice.</param>
    public MultiCrops Apply(Tensor image, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        using var scope = torch.NewDisposeScope();
        var rgb = ImageOps.ToRgb(image);
        var o = Options;

        var global1 = Normalize(Blur(ColorDistort(Geometric(rgb, o.GlobalCropsScale, o.GlobalCropsSize, random), random), o.GlobalCrop1BlurProbability, random));
        var global2Base = Blur(ColorDistort(Geometric(rgb, o.GlobalCropsScale, o.GlobalCropsSize, random), random), o.GlobalCrop2BlurProbability, random);
        if (random.NextDouble() < o.GlobalCrop2SolarizeProbability)
            global2Base = ImageOps.Solarize(global2Base, o.SolarizeThreshold);
        var global2 = Normalize(global2Base);

        var locals = new List<Tensor>(o.LocalCropsNumber);
        for (var i = 0; i < o.LocalCropsNumber; i++)
            locals.Add(Normalize(Blur(ColorDistort(Geometric(rgb, o.LocalCropsScale, o.LocalCropsSize, random), random), o.LocalCropBlurProbability, random)));

        return new MultiCrops
        {
            GlobalCrops = [global1.MoveToOuterDisposeScope(), global2.MoveToOuterDisposeScope()],
            LocalCrops = locals.Select(t => t.MoveToOuterDisposeScope()).ToList(),
        };
    }

    private Tensor Geometric(Tensor rgb, (double Min, double Max) scale, int size, Random random)
    {
        var box = ImageOps.RandomResizedCropBox((int)rgb.shape[1], (int)rgb.shape[2], scale, Options.CropRatio, random);
        var crop = ImageOps.ResizedCrop(rgb, box, size);
        return random.NextDouble() < Options.HorizontalFlipProbability ? ImageOps.HorizontalFlip(crop) : crop;
    }

    private Tensor ColorDistort(Tensor image, Random random)
    {
        var o = Options;
        if (random.NextDouble() < o.ColorJitterProbability)
        {
            // torchvision's ColorJitter: a random order of the four adjustments, factors drawn up front.
            var order = new[] { 0, 1, 2, 3 };
            random.Shuffle(order);
            var brightness = FactorAround1(o.Brightness, random);
            var contrast = FactorAround1(o.Contrast, random);
            var saturation = FactorAround1(o.Saturation, random);
            var hue = o.Hue > 0 ? -o.Hue + 2 * o.Hue * random.NextDouble() : 0.0;
            foreach (var op in order)
            {
                image = op switch
                {
                    0 when o.Brightness > 0 => ImageOps.AdjustBrightness(image, brightness),
                    1 when o.Contrast > 0 => ImageOps.AdjustContrast(image, contrast),
                    2 when o.Saturation > 0 => ImageOps.AdjustSaturation(image, saturation),
                    3 when o.Hue > 0 => ImageOps.AdjustHue(image, hue),
                    _ => image,
                };
            }
        }
        if (random.NextDouble() < o.GrayscaleProbability)
            image = ImageOps.Grayscale(image);
        return image;
    }

    private Tensor Blur(Tensor image, double probability, Random random)
    {
        if (!(random.NextDouble() < probability))
            return image;
        var sigma = Options.BlurSigma.Min + (Options.BlurSigma.Max - Options.BlurSigma.Min) * random.NextDouble();
        return ImageOps.GaussianBlur(image, Options.BlurKernelSize, sigma);
    }

    private Tensor Normalize(Tensor image) => ImageOps.Normalize(image, Options.Mean, Options.Std);

    private static double FactorAround1(double strength, Random random)
    {
        var min = Math.Max(0.0, 1.0 - strength);
        var max = 1.0 + strength;
        return min + (max - min) * random.NextDouble();
    }
}
