namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>Forward FLOPs of a ViT backbone on one image, counted analytically (a multiply-add is 2 FLOPs).</summary>
public static class VitFlops
{
    /// <param name="hidden">The FFN's hidden width.</param>
    /// <param name="swiGlu">A SwiGLU FFN (two input projections) instead of an MLP.</param>
    public static double Forward(int embedDim, int depth, int patchSize, int side, int hidden, bool swiGlu = false, int registers = 0, int inChannels = 3)
    {
        double d = embedDim;
        double patches = (side / patchSize) * (side / patchSize);
        var tokens = patches + 1 + registers;
        var patchEmbed = 2.0 * inChannels * patchSize * patchSize * d * patches;
        var ffn = swiGlu ? 2.0 * d * 2 * hidden + 2.0 * hidden * d : 2.0 * d * hidden * 2;
        var perToken = 2.0 * d * 3 * d + 2.0 * d * d + ffn + 4.0 * tokens * d; // qkv, proj, ffn, QK^T and AV
        return patchEmbed + depth * tokens * perToken;
    }
}
