namespace NvDinoPipeline.Quantization;

/// <summary>Which nodes of a model get QuantizeLinear/DequantizeLinear on their inputs.</summary>
public sealed record QuantizationOptions
{
    /// <summary>Node names kept in float (for example from <c>layers_precision</c> entries naming fp32 or fp16).</summary>
    public IReadOnlySet<string> ExcludedNodes { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>
    /// Also quantise MatMuls whose inputs are both activations (attention's q·kᵀ and softmax·v). Off by default:
    /// a per-tensor 8-bit grid over softmax probabilities loses most small weights, and these products are a few
    /// percent of a ViT's FLOPs at the token counts it is deployed with.
    /// </summary>
    public bool QuantizeActivationMatMuls { get; init; }
}
