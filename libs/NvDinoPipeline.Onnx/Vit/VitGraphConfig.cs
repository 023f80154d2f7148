namespace NvDinoPipeline.Onnx;

public enum VitFfnKind
{
    /// <summary>fc1 → exact (erf) GELU → fc2.</summary>
    Mlp,

    /// <summary>w12 → split → silu(x1)·x2 → w3 (DINOv2 SwiGLUFFN / SwiGLUFFNFused).</summary>
    SwiGlu,
}

/// <summary>The architecture facts of a DINOv2 backbone that its weights alone do not carry (heads, interpolation).</summary>
public sealed record VitGraphConfig
{
    public required int EmbedDim { get; init; }
    public required int Depth { get; init; }
    public required int NumHeads { get; init; }
    public required int PatchSize { get; init; }

    /// <summary>Side of the square training resolution; the position-embedding grid is ImageSize / PatchSize.</summary>
    public required int ImageSize { get; init; }

    public int InChannels { get; init; } = 3;
    public int NumRegisterTokens { get; init; }
    public VitFfnKind Ffn { get; init; } = VitFfnKind.Mlp;
    public double LayerNormEpsilon { get; init; } = 1e-6;

    /// <summary>
    /// DINOv2's <c>interpolate_offset</c>: 0.1 (its default) resizes the position embedding by
    /// scale_factor (g + 0.1) / G; 0 resizes it to the size (g_h, g_w).
    /// </summary>
    public double InterpolateOffset { get; init; } = 0.1;

    /// <summary>
    /// DINOv2's <c>interpolate_antialias</c>. Only false (DINOv2's default) can be exported: PyTorch's antialiased
    /// bicubic is a different filter from ONNX Resize's cubic mode.
    /// </summary>
    public bool InterpolateAntialias { get; init; }

    public int GridSize => ImageSize / PatchSize;
    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>
    /// Reads embed dim, depth, patch size, training resolution, register count and FFN kind from DINOv2
    /// state-dict shapes; heads and the interpolation offset are not recorded in the weights and must be given.
    /// </summary>
    public static VitGraphConfig FromWeights(IReadOnlyDictionary<string, NamedWeight> weights, int numHeads, double interpolateOffset = 0.1)
    {
        ArgumentNullException.ThrowIfNull(weights);
        var patch = Require(weights, "patch_embed.proj.weight", 4);
        var pos = Require(weights, "pos_embed", 3);
        var embedDim = checked((int)patch.Shape[0]);
        var patchSize = checked((int)patch.Shape[2]);
        var tokens = pos.Shape[1] - 1;
        var grid = (int)Math.Round(Math.Sqrt(tokens));
        if (grid * grid != tokens)
        {
            throw new ArgumentException($"Weight 'pos_embed' has {tokens} patch positions, which is not a square grid.", nameof(weights));
        }

        var depth = 0;
        while (weights.Keys.Any(k => k.StartsWith($"blocks.{depth}.", StringComparison.Ordinal)))
        {
            depth++;
        }

        var registers = weights.TryGetValue("register_tokens", out var reg) && reg.Shape.Length == 3 ? checked((int)reg.Shape[1]) : 0;
        var ffn = weights.ContainsKey("blocks.0.mlp.w12.weight") ? VitFfnKind.SwiGlu : VitFfnKind.Mlp;
        return new VitGraphConfig
        {
            EmbedDim = embedDim,
            Depth = depth,
            NumHeads = numHeads,
            PatchSize = patchSize,
            ImageSize = grid * patchSize,
            InChannels = checked((int)patch.Shape[1]),
            NumRegisterTokens = registers,
            Ffn = ffn,
            InterpolateOffset = interpolateOffset,
        };
    }

    internal void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value <= 0)
            {
                throw new ArgumentException($"VitGraphConfig.{name} must be positive, got {value}.");
            }
        }

        Positive(EmbedDim, nameof(EmbedDim));
        Positive(Depth, nameof(Depth));
        Positive(NumHeads, nameof(NumHeads));
        Positive(PatchSize, nameof(PatchSize));
        Positive(ImageSize, nameof(ImageSize));
        Positive(InChannels, nameof(InChannels));
        if (EmbedDim % NumHeads != 0)
        {
            throw new ArgumentException($"VitGraphConfig.EmbedDim {EmbedDim} is not divisible by NumHeads {NumHeads}.");
        }

        if (ImageSize % PatchSize != 0)
        {
            throw new ArgumentException($"VitGraphConfig.ImageSize {ImageSize} is not a multiple of PatchSize {PatchSize}.");
        }

        if (NumRegisterTokens < 0)
        {
            throw new ArgumentException($"VitGraphConfig.NumRegisterTokens must be zero or positive, got {NumRegisterTokens}.");
        }

        if (!(LayerNormEpsilon > 0))
        {
            throw new ArgumentException($"VitGraphConfig.LayerNormEpsilon must be positive, got {LayerNormEpsilon}.");
        }

        if (!(InterpolateOffset >= 0 && InterpolateOffset < 1))
        {
            throw new ArgumentException($"VitGraphConfig.InterpolateOffset must be in [0, 1), got {InterpolateOffset}.");
        }

        if (InterpolateAntialias)
        {
            throw new NotSupportedException(
                "VitGraphConfig.InterpolateAntialias = true cannot be exported: PyTorch's antialiased bicubic position-embedding " +
                "interpolation has no matching ONNX Resize mode. Export backbones trained with interpolate_antialias = false.");
        }
    }

    private static NamedWeight Require(IReadOnlyDictionary<string, NamedWeight> weights, string key, int rank)
    {
        if (!weights.TryGetValue(key, out var weight))
        {
            throw new ArgumentException($"Weight '{key}' is missing.", nameof(weights));
        }

        if (weight.Shape.Length != rank)
        {
            throw new ArgumentException($"Weight '{key}' has shape [{string.Join(", ", weight.Shape)}]; expected rank {rank}.", nameof(weights));
        }

        return weight;
    }
}
