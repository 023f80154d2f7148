using System.Globalization;

namespace NvDinoPipeline.Ssl.Optimization;

/// <summary>Layer-wise learning-rate decay (BEiT; DINOv2 <c>utils/param_groups.py</c> <c>get_vit_lr_decay_rate</c>).</summary>
public static class LayerwiseDecay
{
    /// <summary>
    /// The learning-rate multiplier decay^(numLayers + 1 − layerId) of a parameter: embeddings and tokens
    /// (<c>pos_embed</c>, <c>patch_embed</c>, <c>mask_token</c>, <c>cls_token</c>) are layer 0, block i is
    /// layer i + 1, everything else (final norm, heads, register tokens) is layer numLayers + 1 with multiplier 1.
    /// </summary>
    /// <param name="name">Parameter name, e.g. <c>blocks.3.attn.qkv.weight</c> or <c>backbone.blocks.3.attn.qkv.weight</c>.</param>
    /// <param name="lrDecayRate">Decay per block (<c>optim.layerwise_decay</c>); 1 disables decay.</param>
    /// <param name="numLayers">Number of transformer blocks.</param>
    /// <param name="forceIsBackbone">Treat names without a <c>backbone</c> prefix as backbone parameters.</param>
    /// <param name="chunkedBlocks">Blocks are grouped in chunks (<c>blocks.chunk.block.*</c>).</param>
    public static double Rate(string name, double lrDecayRate = 1.0, int numLayers = 12, bool forceIsBackbone = false, bool chunkedBlocks = false)
    {
        ArgumentNullException.ThrowIfNull(name);
        var layerId = numLayers + 1;
        if (name.StartsWith("backbone", StringComparison.Ordinal) || forceIsBackbone)
        {
            if (name.Contains(".pos_embed") || name.Contains(".patch_embed") || name.Contains(".mask_token") || name.Contains(".cls_token"))
                layerId = 0;
            else if (forceIsBackbone && (name.Contains("pos_embed") || name.Contains("patch_embed") || name.Contains("mask_token") || name.Contains("cls_token")))
                layerId = 0;
            else if (name.Contains(".blocks.") && !name.Contains(".residual."))
                layerId = BlockIndex(name, name.IndexOf(".blocks.", StringComparison.Ordinal), part: 2) + 1;
            else if (chunkedBlocks && name.Contains("blocks.") && !name.Contains("residual."))
                layerId = BlockIndex(name, name.IndexOf("blocks.", StringComparison.Ordinal), part: 2) + 1;
            else if (name.Contains("blocks.") && !name.Contains("residual."))
                layerId = BlockIndex(name, name.IndexOf("blocks.", StringComparison.Ordinal), part: 1) + 1;
        }
        return Math.Pow(lrDecayRate, numLayers + 1 - layerId);
    }

    private static int BlockIndex(string name, int start, int part)
    {
        var parts = name[start..].Split('.');
        if (parts.Length <= part || !int.TryParse(parts[part], NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            throw new ArgumentException($"parameter name '{name}' has no block index where one is expected", nameof(name));
        return index;
    }
}
