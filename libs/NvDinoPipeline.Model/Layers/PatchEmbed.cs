using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Layers;

/// <summary>Image [B,C,H,W] to patch embeddings [B,(H/p)·(W/p),D] by a stride-p convolution.</summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public PatchEmbed(int patchSize, int inChannels, int embedDim, string name = "PatchEmbed") : base(name)
    {
        PatchSize = patchSize;
        proj = nn.Conv2d(inChannels, embedDim, kernel_size: patchSize, stride: patchSize);
        RegisterComponents();
    }

    public int PatchSize { get; }

    public override Tensor forward(Tensor images)
    {
        if (images.dim() != 4)
            throw new ArgumentException($"Images must be [B,C,H,W], got shape [{string.Join(", ", images.shape)}].", nameof(images));
        var height = images.shape[2];
        var width = images.shape[3];
        if (height % PatchSize != 0)
            throw new ArgumentException($"Image height {height} is not a multiple of the patch size {PatchSize}.", nameof(images));
        if (width % PatchSize != 0)
            throw new ArgumentException($"Image width {width} is not a multiple of the patch size {PatchSize}.", nameof(images));

        using var features = proj.forward(images);
        using var flat = features.flatten(2);
        return flat.transpose(1, 2);
    }
}
