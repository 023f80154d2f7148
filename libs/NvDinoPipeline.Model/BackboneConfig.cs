namespace NvDinoPipeline.Model;

/// <summary>Feed-forward layer of each transformer block.</summary>
public enum FfnLayer
{
    /// <summary>fc1 → exact GELU → fc2 (DINOv2 "mlp").</summary>
    Mlp,

    /// <summary>Fused SwiGLU: w12 → SiLU-gated product → w3 (DINOv2 "swiglufused").</summary>
    SwiGlu,
}

/// <summary>
/// Shape and regularisation of a DINOv2 vision transformer backbone. The defaults follow DINOv2's
/// <c>DinoVisionTransformer</c> and TAO's NVDINOv2 defaults (patch 14, trained grid 518 / 14 = 37).
/// </summary>
public sealed record BackboneConfig
{
    public static readonly IReadOnlyList<string> KnownNames = ["vit_pico", "vit_nano", "vit_t", "vit_s", "vit_b", "vit_l", "vit_g"];

    public required int EmbedDim { get; init; }
    public required int Depth { get; init; }
    public required int NumHeads { get; init; }

    /// <summary>14 (DINOv2/NVDINOv2) or 16.</summary>
    public int PatchSize { get; init; } = 14;

    /// <summary>Square side the position embeddings are trained for; other sides are interpolated.</summary>
    public int ImgSize { get; init; } = 518;

    public int InChannels { get; init; } = 3;
    public double MlpRatio { get; init; } = 4.0;
    public FfnLayer FfnLayer { get; init; } = FfnLayer.Mlp;
    public int NumRegisterTokens { get; init; }

    /// <summary>Initial LayerScale gamma; null means no LayerScale (no <c>ls1</c>/<c>ls2</c> parameters).</summary>
    public double? LayerScaleInit { get; init; } = 1e-5;

    /// <summary>Stochastic depth of the last block; block i uses DropPathRate·i/(Depth−1).</summary>
    public double DropPathRate { get; init; }

    /// <summary>
    /// DINOv2's interpolation offset: the bicubic scale factor is (grid + offset) / trainedGrid.
    /// 0 interpolates straight to the target grid size.
    /// </summary>
    public double InterpolateOffset { get; init; } = 0.1;

    public bool InterpolateAntialias { get; init; }

    /// <summary>Side of the trained patch grid (ImgSize / PatchSize).</summary>
    public int GridSize => ImgSize / PatchSize;

    /// <summary>Patch tokens at the trained resolution.</summary>
    public int NumPatches => GridSize * GridSize;

    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>Hidden width of the feed-forward layer, as DINOv2 computes it.</summary>
    public int FfnHiddenDim
    {
        get
        {
            var hidden = (int)(EmbedDim * MlpRatio);
            return FfnLayer == FfnLayer.SwiGlu ? ((int)(hidden * 2.0 / 3.0) + 7) / 8 * 8 : hidden;
        }
    }

    public static BackboneConfig VitPico(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 64, Depth = 2, NumHeads = 2, PatchSize = patchSize, ImgSize = imgSize };

    /// <summary>128 wide, 4 blocks, 4 heads: a network that trains in minutes on a CPU (benchmarks, quick experiments).</summary>
    public static BackboneConfig VitNano(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 128, Depth = 4, NumHeads = 4, PatchSize = patchSize, ImgSize = imgSize };

    public static BackboneConfig VitTiny(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 192, Depth = 12, NumHeads = 3, PatchSize = patchSize, ImgSize = imgSize };

    public static BackboneConfig VitSmall(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 384, Depth = 12, NumHeads = 6, PatchSize = patchSize, ImgSize = imgSize };

    public static BackboneConfig VitBase(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 768, Depth = 12, NumHeads = 12, PatchSize = patchSize, ImgSize = imgSize };

    public static BackboneConfig VitLarge(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 1024, Depth = 24, NumHeads = 16, PatchSize = patchSize, ImgSize = imgSize };

    /// <summary>DINOv2's "giant2": 1536 wide, 24 heads of 64, SwiGLU feed-forward.</summary>
    public static BackboneConfig VitGiant(int patchSize = 14, int imgSize = 518) =>
        new() { EmbedDim = 1536, Depth = 40, NumHeads = 24, PatchSize = patchSize, ImgSize = imgSize, FfnLayer = FfnLayer.SwiGlu };

    /// <summary>
    /// Config from a TAO/DINOv2 backbone name: vit_s, vit_b, vit_l, vit_g, vit_t, or the small vit_nano and vit_pico
    /// (DINOv2's vit_small, vit_base, vit_large, vit_giant2 are accepted too).
    /// </summary>
    /// <param name="ffnLayer">null keeps the architecture's default (SwiGLU for vit_g, MLP otherwise).</param>
    public static BackboneConfig FromName(
        string name,
        int patchSize = 14,
        int imgSize = 518,
        FfnLayer? ffnLayer = null,
        int numRegisterTokens = 0,
        double? layerScaleInit = 1e-5,
        double dropPathRate = 0.0)
    {
        ArgumentNullException.ThrowIfNull(name);
        var baseConfig = name.Trim().ToLowerInvariant() switch
        {
            "vit_pico" => VitPico(patchSize, imgSize),
            "vit_nano" => VitNano(patchSize, imgSize),
            "vit_t" or "vit_tiny" => VitTiny(patchSize, imgSize),
            "vit_s" or "vit_small" => VitSmall(patchSize, imgSize),
            "vit_b" or "vit_base" => VitBase(patchSize, imgSize),
            "vit_l" or "vit_large" => VitLarge(patchSize, imgSize),
            "vit_g" or "vit_giant" or "vit_giant2" => VitGiant(patchSize, imgSize),
            _ => throw new ArgumentException(
                $"Unknown backbone '{name}'. Valid names: {string.Join(", ", KnownNames)}.", nameof(name)),
        };
        var config = baseConfig with
        {
            FfnLayer = ffnLayer ?? baseConfig.FfnLayer,
            NumRegisterTokens = numRegisterTokens,
            LayerScaleInit = layerScaleInit,
            DropPathRate = dropPathRate,
        };
        config.Validate();
        return config;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent setting.</summary>
    public void Validate()
    {
        if (EmbedDim <= 0)
            throw new ArgumentException($"EmbedDim must be positive, got {EmbedDim}.");
        if (Depth <= 0)
            throw new ArgumentException($"Depth must be positive, got {Depth}.");
        if (NumHeads <= 0 || EmbedDim % NumHeads != 0)
            throw new ArgumentException($"NumHeads must divide EmbedDim {EmbedDim}, got {NumHeads}.");
        if (PatchSize <= 0)
            throw new ArgumentException($"PatchSize must be positive, got {PatchSize}.");
        if (ImgSize <= 0 || ImgSize % PatchSize != 0)
            throw new ArgumentException($"ImgSize must be a positive multiple of the patch size {PatchSize}, got {ImgSize}.");
        if (InChannels <= 0)
            throw new ArgumentException($"InChannels must be positive, got {InChannels}.");
        if (MlpRatio <= 0)
            throw new ArgumentException($"MlpRatio must be positive, got {MlpRatio}.");
        if (NumRegisterTokens < 0)
            throw new ArgumentException($"NumRegisterTokens must not be negative, got {NumRegisterTokens}.");
        if (LayerScaleInit is { } ls && (ls <= 0 || double.IsNaN(ls)))
            throw new ArgumentException($"LayerScaleInit must be positive or null (no LayerScale), got {ls}.");
        if (DropPathRate is < 0 or >= 1 || double.IsNaN(DropPathRate))
            throw new ArgumentException($"DropPathRate must be in [0, 1), got {DropPathRate}.");
        if (InterpolateOffset < 0 || double.IsNaN(InterpolateOffset))
            throw new ArgumentException($"InterpolateOffset must not be negative, got {InterpolateOffset}.");
    }

    /// <summary>Stochastic-depth rate of each block, rising linearly from 0 to DropPathRate (DINOv2's rule).</summary>
    public double DropPathRateOfBlock(int index) =>
        Depth == 1 ? 0.0 : DropPathRate * index / (Depth - 1);

    /// <summary>Trainable parameter count, computed without building the model.</summary>
    public long ParameterCount()
    {
        long d = EmbedDim;
        long hidden = FfnHiddenDim;
        long patchEmbed = (long)InChannels * PatchSize * PatchSize * d + d;
        long tokens = d /* cls_token */ + (NumPatches + 1L) * d /* pos_embed */ + NumRegisterTokens * d + d /* mask_token */;
        long attention = d * 3 * d + 3 * d + d * d + d;
        long ffn = FfnLayer == FfnLayer.SwiGlu
            ? d * 2 * hidden + 2 * hidden + hidden * d + d
            : d * hidden + hidden + hidden * d + d;
        long norms = 2 * 2 * d;
        long layerScale = LayerScaleInit is null ? 0 : 2 * d;
        long block = attention + ffn + norms + layerScale;
        return patchEmbed + tokens + Depth * block + 2 * d;
    }
}
