using NvDinoPipeline.Ssl.Masking;
using static TorchSharp.torch;

namespace NvDinoPipeline.Training.Core.Data;

/// <summary>One training step's input: the crops of <see cref="Images"/> images, crop-major, and the iBOT masks of the global crops.</summary>
public sealed class SslBatch : IDisposable
{
    /// <summary>[2·B, 3, G, G] float32: all images' first global crop, then all second ones.</summary>
    public required Tensor GlobalCrops { get; init; }

    /// <summary>[nL·B, 3, L, L] float32, or null without local crops.</summary>
    public required Tensor? LocalCrops { get; init; }

    /// <summary>Masks over the global crops' patch grid [2·B, N].</summary>
    public required CollatedMasks Masks { get; init; }

    public required int Epoch { get; init; }

    /// <summary>The global step this batch is drawn for (0-based over the whole run).</summary>
    public required long Step { get; init; }

    /// <summary>B, the number of images.</summary>
    public required int Images { get; init; }

    public void Dispose()
    {
        GlobalCrops.Dispose();
        LocalCrops?.Dispose();
        Masks.Dispose();
    }
}
