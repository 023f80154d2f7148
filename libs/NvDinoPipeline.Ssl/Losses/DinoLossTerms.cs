using NvDinoPipeline.Model;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Losses;

/// <summary>
/// The two parts of the DINO class-token loss as DINOv2 reports them (<c>dino_local_crops_loss</c>,
/// <c>dino_global_crops_loss</c>), both already divided by the number of student/teacher pairs.
/// </summary>
public sealed record DinoLossTerms(Tensor LocalCrops, Tensor GlobalCrops)
{
    /// <summary>Sum of both terms (the DINO loss before its loss weight).</summary>
    public Tensor Total() => LocalCrops.Plus(GlobalCrops);
}
