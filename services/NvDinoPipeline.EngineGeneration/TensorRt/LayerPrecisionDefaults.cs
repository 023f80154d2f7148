using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>
/// The <c>layers_precision</c> an fp16 engine is built with when the spec gives none: every LayerNormalization and
/// Softmax node in fp32, the two places where a ViT's activations overflow fp16 (variance sums, attention logits).
/// A spec that lists layers is used as given (<c>["*:fp16"]</c> runs everything in fp16).
/// </summary>
public static class LayerPrecisionDefaults
{
    public static readonly IReadOnlySet<string> KeptInFp32 = new HashSet<string>(StringComparer.Ordinal) { "LayerNormalization", "Softmax" };

    /// <summary>The layers to constrain, and whether they are the default rather than the spec's.</summary>
    public static (IReadOnlyList<LayerPrecision> Layers, bool IsDefault) For(EngineSettings settings, GraphProto graph)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(graph);
        if (settings.Precision != Precisions.Fp16 || settings.LayersPrecision.Count > 0)
        {
            return (settings.LayersPrecision, false);
        }

        var layers = graph.Node
            .Where(n => n.Domain is null or "" or "ai.onnx" && n.OpType is { } op && KeptInFp32.Contains(op) && n.Name is { Length: > 0 } name && !name.Contains(',') && !name.Contains(':'))
            .Select(n => new LayerPrecision(n.Name!, Precisions.Fp32))
            .ToList();
        return (layers, layers.Count > 0);
    }
}
