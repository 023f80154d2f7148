namespace NvDinoPipeline.Onnx;

/// <summary>How a ViT backbone is exported: opset, batch and resolution handling, extra outputs.</summary>
public sealed record VitExportOptions
{
    public const int MinOpset = 17;
    public const int MaxOpset = 21;

    /// <summary>Default-domain opset; 17 is the first with LayerNormalization.</summary>
    public int Opset { get; init; } = 17;

    /// <summary>Fixed batch size, or -1 (TAO's convention) for a dynamic "batch" dimension.</summary>
    public int BatchSize { get; init; } = -1;

    /// <summary>Fixed input height (a multiple of the patch size); null means the trained resolution.</summary>
    public int? Height { get; init; }

    /// <summary>Fixed input width (a multiple of the patch size); null means the trained resolution.</summary>
    public int? Width { get; init; }

    /// <summary>
    /// Symbolic "height"/"width" input dims, with the position-embedding interpolation computed in the graph.
    /// Feed sides that are multiples of the patch size: for other sides ONNX Runtime's Resize skips a resize whose
    /// output size equals its input size even when the scale is not 1, where PyTorch would still resample.
    /// </summary>
    public bool DynamicHeightWidth { get; init; }

    /// <summary>Adds a second output "patch_tokens" [B, N, D] (final-norm patch tokens, registers excluded).</summary>
    public bool IncludePatchTokens { get; init; }

    public bool DynamicBatch => BatchSize == -1;

    internal void Validate(VitGraphConfig config)
    {
        if (Opset is < MinOpset or > MaxOpset)
        {
            throw new ArgumentException($"VitExportOptions.Opset {Opset} is not supported; use {MinOpset}..{MaxOpset} (LayerNormalization needs 17).");
        }

        if (BatchSize is 0 or < -1)
        {
            throw new ArgumentException($"VitExportOptions.BatchSize must be positive or -1 for a dynamic batch, got {BatchSize}.");
        }

        if (DynamicHeightWidth)
        {
            if (Height is not null || Width is not null)
            {
                throw new ArgumentException("VitExportOptions.Height/Width fix the input size; they cannot be combined with DynamicHeightWidth.");
            }

            return;
        }

        foreach (var (name, value) in new[] { (nameof(Height), Height), (nameof(Width), Width) })
        {
            if (value is { } side && (side <= 0 || side % config.PatchSize != 0))
            {
                throw new ArgumentException($"VitExportOptions.{name} {side} must be a positive multiple of the patch size {config.PatchSize}.");
            }
        }
    }
}
