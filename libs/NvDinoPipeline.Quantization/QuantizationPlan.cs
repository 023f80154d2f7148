using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Quantization;

/// <summary>A constant weight quantised per output channel along <see cref="Axis"/>.</summary>
public sealed record QuantizedWeight(string Name, int InputIndex, int Axis);

/// <summary>One node whose inputs get Q/DQ: activations per tensor, at most one constant weight per channel.</summary>
public sealed record QuantizedNode(int NodeIndex, string Name, string OpType, IReadOnlyList<(int InputIndex, string Tensor)> Activations, QuantizedWeight? Weight);

/// <summary>What a quantisation will change, and which activation ranges calibration has to measure.</summary>
public sealed record QuantizationPlan(IReadOnlyList<QuantizedNode> Nodes, IReadOnlyList<string> KeptInFloat)
{
    /// <summary>Distinct activation tensors whose ranges are needed, in graph order.</summary>
    public IReadOnlyList<string> ActivationTensors { get; } =
        [.. Nodes.SelectMany(n => n.Activations.Select(a => a.Tensor)).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// Chooses the MatMul, Gemm and Conv nodes to quantise. Everything else (LayerNormalization, Softmax, GELU,
    /// residual adds) stays float, where fp16/int8 overflow in ViTs is known to hurt most.
    /// </summary>
    public static QuantizationPlan Create(ModelProto model, QuantizationOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        var graph = model.Graph ?? throw new ArgumentException("The model has no graph.", nameof(model));
        var initializers = graph.Initializer.Where(t => t.Name is not null).ToDictionary(t => t.Name!, StringComparer.Ordinal);
        var nodes = new List<QuantizedNode>();
        var kept = new List<string>();
        for (var index = 0; index < graph.Node.Count; index++)
        {
            var node = graph.Node[index];
            if (node.Domain is { Length: > 0 } and not "ai.onnx" || node.OpType is not ("MatMul" or "Gemm" or "Conv"))
            {
                continue;
            }

            var name = node.Name ?? "";
            if (options.ExcludedNodes.Contains(name))
            {
                kept.Add(name);
                continue;
            }

            var planned = Plan(index, node, initializers, options);
            if (planned is not null)
            {
                nodes.Add(planned);
            }
        }

        return new QuantizationPlan(nodes, kept);
    }

    private static QuantizedNode? Plan(int index, NodeProto node, Dictionary<string, TensorProto> initializers, QuantizationOptions options)
    {
        if (node.Input.Count < 2)
        {
            return null;
        }

        var name = node.Name ?? "";
        string a = node.Input[0], b = node.Input[1];
        var aIsWeight = initializers.ContainsKey(a);
        var bWeight = initializers.GetValueOrDefault(b);
        switch (node.OpType)
        {
            case "MatMul" when !aIsWeight && bWeight is { DataType: TensorDataType.Float, Dims.Count: 2 }:
                return new QuantizedNode(index, name, "MatMul", [(0, a)], new QuantizedWeight(b, 1, Axis: 1));
            case "MatMul" when !aIsWeight && bWeight is null && options.QuantizeActivationMatMuls:
                return new QuantizedNode(index, name, "MatMul", [(0, a), (1, b)], null);
            case "Gemm" when !aIsWeight && bWeight is { DataType: TensorDataType.Float, Dims.Count: 2 }:
                var transB = node.Attribute.FirstOrDefault(x => x.Name == "transB")?.I ?? 0;
                return new QuantizedNode(index, name, "Gemm", [(0, a)], new QuantizedWeight(b, 1, Axis: transB == 1 ? 0 : 1));
            case "Conv" when !aIsWeight && bWeight is { DataType: TensorDataType.Float, Dims.Count: >= 3 }:
                return new QuantizedNode(index, name, "Conv", [(0, a)], new QuantizedWeight(b, 1, Axis: 0));
            default:
                return null;
        }
    }
}
