using NvDinoPipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Masking;

/// <summary>
/// Draws the iBOT masks for a batch (DINOv2 <c>data/collate.py</c>): ⌊B · maskProbability⌋ samples are
/// masked, sample i of them with a ratio drawn uniformly from the i-th of equal bins spanning
/// [ratioMin, ratioMax] (so ratios are spread over the whole range), the rest unmasked; then the masks
/// are shuffled over the batch. Deterministic for a given <see cref="Random"/> state.
/// </summary>
public static class MaskCollator
{
    /// <param name="samples">B, the number of global crops in the batch (images × global crops).</param>
    /// <param name="generator">The block mask generator for the patch grid of a global crop.</param>
    /// <param name="ratioMin">Smallest masking ratio (TAO/DINOv2: 0.1).</param>
    /// <param name="ratioMax">Largest masking ratio (TAO/DINOv2: 0.5).</param>
    /// <param name="maskProbability">Share of samples that are masked (TAO/DINOv2: 0.5).</param>
    /// <param name="random">Source of randomness.</param>
    public static CollatedMasks Collate(int samples, MaskingGenerator generator, double ratioMin, double ratioMax, double maskProbability, Random random)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentNullException.ThrowIfNull(random);
        if (samples <= 0) throw new ArgumentOutOfRangeException(nameof(samples), samples, "must be positive");
        if (!(ratioMin >= 0 && ratioMin <= ratioMax && ratioMax <= 1))
            throw new ArgumentOutOfRangeException(nameof(ratioMax), $"mask ratio range [{ratioMin}, {ratioMax}] must satisfy 0 ≤ min ≤ max ≤ 1");
        if (!(maskProbability >= 0 && maskProbability <= 1))
            throw new ArgumentOutOfRangeException(nameof(maskProbability), maskProbability, "must be in [0, 1]");

        var n = generator.NumPatches;
        var masked = (int)(samples * maskProbability);
        var masks = new List<bool[]>(samples);
        var upperbound = 0;
        for (var i = 0; i < masked; i++)
        {
            var binMin = ratioMin + (ratioMax - ratioMin) * i / masked;
            var binMax = ratioMin + (ratioMax - ratioMin) * (i + 1) / masked;
            var ratio = binMin + (binMax - binMin) * random.NextDouble();
            masks.Add(generator.Generate((int)(n * ratio), random));
            upperbound += (int)(n * binMax);
        }
        for (var i = masked; i < samples; i++)
            masks.Add(new bool[n]);

        // Fisher-Yates shuffle, so which sample gets which ratio is random.
        for (var i = masks.Count - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (masks[i], masks[j]) = (masks[j], masks[i]);
        }

        var flat = new bool[samples * n];
        for (var i = 0; i < samples; i++)
            Array.Copy(masks[i], 0, flat, i * n, n);

        using var scope = torch.NewDisposeScope();
        var maskTensor = torch.tensor(flat, dtype: ScalarType.Bool).view(samples, n);
        var indices = maskTensor.flatten().nonzero().flatten();
        var perSample = maskTensor.sum(-1).to(ScalarType.Float32).ClampedMin(1.0).reciprocal();
        var weights = perSample.unsqueeze(-1).expand_as(maskTensor).masked_select(maskTensor);
        return new CollatedMasks
        {
            Masks = maskTensor.MoveToOuterDisposeScope(),
            MaskIndices = indices.MoveToOuterDisposeScope(),
            MasksWeight = weights.MoveToOuterDisposeScope(),
            MaskedPatchCount = (int)indices.shape[0],
            Upperbound = upperbound,
        };
    }
}
