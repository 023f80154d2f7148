using static TorchSharp.torch;

namespace NvDinoPipeline.Model;

/// <summary>Final-norm features of a backbone forward pass (DINOv2's x_norm_clstoken / patchtokens / regtokens).</summary>
/// <param name="ClsToken">[B, D].</param>
/// <param name="PatchTokens">[B, (H/p)·(W/p), D], row-major over the patch grid.</param>
/// <param name="RegisterTokens">[B, R, D]; R = 0 without register tokens.</param>
public sealed record BackboneOutput(Tensor ClsToken, Tensor PatchTokens, Tensor RegisterTokens) : IDisposable
{
    public void Dispose()
    {
        ClsToken.Dispose();
        PatchTokens.Dispose();
        RegisterTokens.Dispose();
    }
}
