using NvDinoPipeline.Ssl.Augmentation;

namespace NvDinoPipeline.Training.Core.Data;

/// <summary>How images become training batches: batch size, multi-crop augmentation, iBOT masking and loader threads.</summary>
public sealed record SslDataOptions
{
    /// <summary>Images per step (<c>dataset.batch_size</c>); each yields 2 global and n local crops.</summary>
    public required int BatchSize { get; init; }

    public required MultiCropOptions Crops { get; init; }

    /// <summary>Patch size of the backbone: the global crops' patch grid is what iBOT masks.</summary>
    public required int PatchSize { get; init; }

    public double MaskRatioMin { get; init; } = 0.1;

    public double MaskRatioMax { get; init; } = 0.5;

    /// <summary>Share of the global crops that get a mask (<c>train.loss.mask_sample_probability</c>).</summary>
    public double MaskSampleProbability { get; init; } = 0.5;

    /// <summary>Threads building batches in the background (<c>dataset.workers</c>); 0 builds them on the training thread.</summary>
    public int Workers { get; init; }

    /// <summary>Batches built ahead of the training step, at most; bounds the loader's memory.</summary>
    public int PrefetchBatches { get; init; } = 2;

    public void Validate()
    {
        if (BatchSize < 1)
            throw new ArgumentException($"BatchSize must be at least 1, got {BatchSize}.");
        ArgumentNullException.ThrowIfNull(Crops);
        Crops.Validate();
        if (PatchSize < 1)
            throw new ArgumentException($"PatchSize must be positive, got {PatchSize}.");
        if (Crops.GlobalCropsSize % PatchSize != 0)
            throw new ArgumentException($"The global crop size {Crops.GlobalCropsSize} is not a multiple of the patch size {PatchSize}.");
        if (Crops.LocalCropsNumber > 0 && Crops.LocalCropsSize % PatchSize != 0)
            throw new ArgumentException($"The local crop size {Crops.LocalCropsSize} is not a multiple of the patch size {PatchSize}.");
        if (!(MaskRatioMin >= 0 && MaskRatioMin <= MaskRatioMax && MaskRatioMax <= 1))
            throw new ArgumentException($"The mask ratio range [{MaskRatioMin}, {MaskRatioMax}] must satisfy 0 <= min <= max <= 1.");
        if (!(MaskSampleProbability >= 0 && MaskSampleProbability <= 1))
            throw new ArgumentException($"MaskSampleProbability must be in [0, 1], got {MaskSampleProbability}.");
        if (Workers < 0)
            throw new ArgumentException($"Workers must not be negative, got {Workers}.");
        if (PrefetchBatches < 1)
            throw new ArgumentException($"PrefetchBatches must be at least 1, got {PrefetchBatches}.");
    }
}
