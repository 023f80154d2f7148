using TorchSharp.Modules;

namespace NvDinoPipeline.Ssl.Optimization;

/// <summary>One trainable parameter with its learning-rate and weight-decay multipliers.</summary>
public sealed record ParamGroupSpec
{
    public required string Name { get; init; }

    public required Parameter Parameter { get; init; }

    public required double LrMultiplier { get; init; }

    public required double WdMultiplier { get; init; }

    /// <summary>Part of a head's <c>last_layer</c>, which follows the last-layer learning-rate schedule.</summary>
    public required bool IsLastLayer { get; init; }
}

/// <summary>Parameters sharing the same multipliers, ready to become one optimizer group.</summary>
public sealed record FusedParamGroup
{
    public required IReadOnlyList<Parameter> Parameters { get; init; }

    public required IReadOnlyList<string> Names { get; init; }

    public required double LrMultiplier { get; init; }

    public required double WdMultiplier { get; init; }

    public required bool IsLastLayer { get; init; }
}

/// <summary>DINOv2's optimizer parameter groups (<c>utils/param_groups.py</c>).</summary>
public static class ParamGroups
{
    private static readonly string[] TokenNames = ["cls_token", "mask_token", "register_tokens"];

    /// <summary>
    /// Multipliers for each trainable parameter of one sub-model (a backbone or a head), as DINOv2's
    /// <c>get_params_groups_with_decay</c>: layer-wise lr decay by block, <paramref name="patchEmbedLrMultiplier"/>
    /// on <c>patch_embed</c>, no weight decay on biases, norms and LayerScale <c>gamma</c>, and
    /// <c>last_layer</c> flagged. Parameters with <c>requires_grad = false</c> are skipped.
    /// </summary>
    /// <param name="namedParameters">The sub-model's <c>named_parameters()</c>.</param>
    /// <param name="numBlocks">Number of transformer blocks for a backbone; 0 for a head (no decay).</param>
    /// <param name="layerwiseDecay">Decay per block (<c>optim.layerwise_decay</c>).</param>
    /// <param name="patchEmbedLrMultiplier">Extra multiplier on <c>patch_embed</c> (<c>optim.patch_embed_lr_mult</c>).</param>
    /// <param name="chunkedBlocks">Blocks are grouped in chunks (<c>blocks.chunk.block.*</c>).</param>
    /// <param name="noWeightDecayOnTokens">
    /// Also exempt <c>cls_token</c>, <c>mask_token</c> and <c>register_tokens</c> from weight decay
    /// (DINOv2 decays them; NVDINOv2's recipe exempts them, the default here).
    /// </param>
    public static IReadOnlyList<ParamGroupSpec> WithDecay(
        IEnumerable<(string name, Parameter parameter)> namedParameters,
        int numBlocks,
        double layerwiseDecay = 1.0,
        double patchEmbedLrMultiplier = 1.0,
        bool chunkedBlocks = false,
        bool noWeightDecayOnTokens = true)
    {
        ArgumentNullException.ThrowIfNull(namedParameters);
        if (numBlocks < 0) throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks, "must not be negative");
        if (!(layerwiseDecay > 0)) throw new ArgumentOutOfRangeException(nameof(layerwiseDecay), layerwiseDecay, "must be positive");
        if (!(patchEmbedLrMultiplier >= 0)) throw new ArgumentOutOfRangeException(nameof(patchEmbedLrMultiplier), patchEmbedLrMultiplier, "must not be negative");

        var groups = new List<ParamGroupSpec>();
        foreach (var (rawName, parameter) in namedParameters)
        {
            if (!parameter.requires_grad)
                continue;
            var name = rawName.Replace("_fsdp_wrapped_module.", "", StringComparison.Ordinal);
            var lr = LayerwiseDecay.Rate(name, layerwiseDecay, numBlocks, forceIsBackbone: numBlocks > 0, chunkedBlocks);
            var noDecay = name.EndsWith(".bias", StringComparison.Ordinal) || name == "bias" || name.Contains("norm") || name.Contains("gamma")
                || (noWeightDecayOnTokens && TokenNames.Any(name.Contains));
            if (name.Contains("patch_embed"))
                lr *= patchEmbedLrMultiplier;
            groups.Add(new ParamGroupSpec
            {
                Name = name,
                Parameter = parameter,
                LrMultiplier = lr,
                WdMultiplier = noDecay ? 0.0 : 1.0,
                IsLastLayer = name.Contains("last_layer"),
            });
        }
        return groups;
    }

    /// <summary>Merges parameters with equal (lr multiplier, wd multiplier, last-layer flag), keeping first-seen order.</summary>
    public static IReadOnlyList<FusedParamGroup> Fuse(IEnumerable<ParamGroupSpec> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        return groups
            .GroupBy(g => (g.LrMultiplier, g.WdMultiplier, g.IsLastLayer))
            .Select(g => new FusedParamGroup
            {
                Parameters = g.Select(x => x.Parameter).ToList(),
                Names = g.Select(x => x.Name).ToList(),
                LrMultiplier = g.Key.LrMultiplier,
                WdMultiplier = g.Key.WdMultiplier,
                IsLastLayer = g.Key.IsLastLayer,
            })
            .ToList();
    }
}
