using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Masking;

/// <summary>The iBOT masks of one batch of global crops, as DINOv2's <c>collate_data_and_cast</c> returns them.</summary>
public sealed class CollatedMasks : IDisposable
{
    /// <summary>Masks [B, N] (bool), B = number of global crops in the batch, N = patches per crop.</summary>
    public required Tensor Masks { get; init; }

    /// <summary>Flat indices of the masked patches into [B·N] (int64) [M].</summary>
    public required Tensor MaskIndices { get; init; }

    /// <summary>Per masked patch, 1 / (masked patches of its image) (float32) [M].</summary>
    public required Tensor MasksWeight { get; init; }

    /// <summary>M, the number of masked patches in the batch.</summary>
    public required int MaskedPatchCount { get; init; }

    /// <summary>Σ over masked samples of ⌊N · upper ratio of its bin⌋: a fixed-size buffer bound for the masked tokens.</summary>
    public required int Upperbound { get; init; }

    public void Dispose()
    {
        Masks.Dispose();
        MaskIndices.Dispose();
        MasksWeight.Dispose();
    }
}
