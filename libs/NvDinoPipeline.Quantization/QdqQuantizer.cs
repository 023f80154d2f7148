using System.Runtime.InteropServices;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Quantization;

/// <summary>
/// Writes an explicitly quantised (QDQ) copy of a float model: every planned node reads its activations through
/// QuantizeLinear → DequantizeLinear with a per-tensor symmetric int8 scale from calibration, and its weight as an
/// int8 initializer through a per-channel DequantizeLinear. Zero points are 0 and weights use [−127, 127], the form
/// TensorRT's explicit-quantisation path requires; ONNX Runtime fuses the same pattern into integer kernels.
/// </summary>
public static class QdqQuantizer
{
    public const int MinOpset = 13;

    public static ModelProto Quantize(ModelProto model, QuantizationPlan plan, CalibrationTable table)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(table);
        var source = model.Graph ?? throw new ArgumentException("The model has no graph.", nameof(model));
        var opset = model.OpsetImport.Where(o => o.Domain is null or "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        if (opset < MinOpset)
        {
            throw new NotSupportedException($"The model imports opset {opset}; per-channel QuantizeLinear/DequantizeLinear needs opset {MinOpset} or later.");
        }

        var missing = table.Missing(plan);
        if (missing.Count > 0)
        {
            throw new ArgumentException(
                $"The calibration table has no range for {missing.Count} tensor(s) the model quantises, e.g. '{missing[0]}'; it was made for another model.",
                nameof(table));
        }

        var initializers = source.Initializer.Where(t => t.Name is not null).ToDictionary(t => t.Name!, StringComparer.Ordinal);
        var planned = plan.Nodes.ToDictionary(n => n.NodeIndex);
        foreach (var node in plan.Nodes)
        {
            if (node.NodeIndex >= source.Node.Count || source.Node[node.NodeIndex].Name != node.Name)
            {
                throw new ArgumentException($"The plan's node '{node.Name}' is not node {node.NodeIndex} of this model; make the plan from the same model.", nameof(plan));
            }
        }

        var names = new UniqueNames(source);
        var graph = new GraphProto { Name = source.Name, DocString = source.DocString };
        graph.Input.AddRange(source.Input);
        graph.Output.AddRange(source.Output);
        graph.ValueInfo.AddRange(source.ValueInfo);

        var quantizedWeights = new HashSet<string>(plan.Nodes.Where(n => n.Weight is not null).Select(n => n.Weight!.Name), StringComparer.Ordinal);
        var stillUsedAsFloat = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < source.Node.Count; i++)
        {
            var node = source.Node[i];
            planned.TryGetValue(i, out var p);
            for (var k = 0; k < node.Input.Count; k++)
            {
                if (quantizedWeights.Contains(node.Input[k]) && p?.Weight?.InputIndex != k)
                {
                    stillUsedAsFloat.Add(node.Input[k]);
                }
            }
        }

        graph.Initializer.AddRange(source.Initializer.Where(t => !quantizedWeights.Contains(t.Name ?? "") || stillUsedAsFloat.Contains(t.Name!)));

        var dequantizedWeights = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < source.Node.Count; i++)
        {
            var node = source.Node[i];
            if (!planned.TryGetValue(i, out var p))
            {
                graph.Node.Add(node);
                continue;
            }

            var rewritten = Clone(node);
            foreach (var (inputIndex, tensor) in p.Activations)
            {
                // A Q→DQ pair with its own scale per consumer: ONNX Runtime converts int8 Q/DQ to its fast uint8
                // kernels only for a QuantizeLinear with a single DequantizeLinear after it, and its common
                // subexpression elimination merges Q nodes with identical inputs (q/k/v stayed float that way).
                // TensorRT accepts either form.
                var range = table.Tensors[tensor];
                var prefix = $"{p.Name}/input_{inputIndex}";
                var scale = AddInitializer(graph, names.Claim($"{tensor}_scale_for_{p.Name}"), TensorDataType.Float, [], MemoryMarshal.AsBytes<float>([range.Scale]).ToArray());
                var zeroPoint = AddInitializer(graph, names.Claim($"{tensor}_zero_point_for_{p.Name}"), TensorDataType.Int8, [], [0]);
                var quantized = names.Claim($"{tensor}_quantized_for_{p.Name}");
                var dequantized = names.Claim($"{tensor}_dequantized_for_{p.Name}");
                graph.Node.Add(NewNode("QuantizeLinear", names.Claim(prefix + "/QuantizeLinear"), [tensor, scale, zeroPoint], quantized));
                graph.Node.Add(NewNode("DequantizeLinear", names.Claim(prefix + "/DequantizeLinear"), [quantized, scale, zeroPoint], dequantized));
                rewritten.Input[inputIndex] = dequantized;
            }

            if (p.Weight is { } weight)
            {
                if (!dequantizedWeights.TryGetValue(weight.Name, out var dequantized))
                {
                    dequantized = QuantizeWeight(graph, names, initializers[weight.Name], weight.Axis);
                    dequantizedWeights[weight.Name] = dequantized;
                }

                rewritten.Input[weight.InputIndex] = dequantized;
            }

            graph.Node.Add(rewritten);
        }

        var result = new ModelProto
        {
            IrVersion = model.IrVersion,
            ProducerName = model.ProducerName,
            ProducerVersion = model.ProducerVersion,
            Domain = model.Domain,
            ModelVersion = model.ModelVersion,
            DocString = model.DocString,
            Graph = graph,
        };
        result.OpsetImport.AddRange(model.OpsetImport);
        result.MetadataProps.AddRange(model.MetadataProps.Where(m => m.Key is not ("quantization" or "calibration_method")));
        result.MetadataProps.Add(new StringStringEntryProto { Key = "quantization", Value = "int8 qdq: per-tensor activations, per-channel weights" });
        result.MetadataProps.Add(new StringStringEntryProto { Key = "calibration_method", Value = table.Method });
        return result;
    }

    /// <summary>Symmetric per-channel int8 values and scales of a float weight: scale = max|w| / 127 along <paramref name="axis"/>.</summary>
    public static (sbyte[] Values, float[] Scales) QuantizePerChannel(ReadOnlySpan<float> weight, IReadOnlyList<long> dims, int axis)
    {
        if (axis < 0 || axis >= dims.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(axis), axis, $"A weight of rank {dims.Count} has no axis {axis}.");
        }

        var channels = (int)dims[axis];
        var inner = 1;
        for (var d = axis + 1; d < dims.Count; d++)
        {
            inner *= (int)dims[d];
        }

        var amax = new float[channels];
        for (var i = 0; i < weight.Length; i++)
        {
            var c = i / inner % channels;
            amax[c] = Math.Max(amax[c], Math.Abs(weight[i]));
        }

        var scales = amax.Select(a => Math.Max(a, 1e-8f) / 127f).ToArray();
        var values = new sbyte[weight.Length];
        for (var i = 0; i < weight.Length; i++)
        {
            var q = MathF.Round(weight[i] / scales[i / inner % channels], MidpointRounding.ToEven);
            values[i] = (sbyte)Math.Clamp(q, -127f, 127f);
        }

        return (values, scales);
    }

    private static string QuantizeWeight(GraphProto graph, UniqueNames names, TensorProto weight, int axis)
    {
        var floats = ReadFloats(weight);
        var (values, scales) = QuantizePerChannel(floats, weight.Dims, axis);
        var name = weight.Name!;
        var quantized = AddInitializer(graph, names.Claim(name + "_quantized"), TensorDataType.Int8, weight.Dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        var scale = AddInitializer(graph, names.Claim(name + "_scale"), TensorDataType.Float, [scales.Length], MemoryMarshal.AsBytes(scales.AsSpan()).ToArray());
        var zeroPoint = AddInitializer(graph, names.Claim(name + "_zero_point"), TensorDataType.Int8, [scales.Length], new byte[scales.Length]);
        var dequantized = names.Claim(name + "_dequantized");
        var node = NewNode("DequantizeLinear", names.Claim(name + "_DequantizeLinear"), [quantized, scale, zeroPoint], dequantized);
        node.Attribute.Add(OnnxAttribute.Int("axis", axis));
        graph.Node.Add(node);
        return dequantized;
    }

    internal static float[] ReadFloats(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorDataLocation.External)
        {
            throw new ArgumentException($"Weight '{tensor.Name}' is in an external data file; load the model with its external data first.");
        }

        if (tensor.RawData is { } raw)
        {
            return MemoryMarshal.Cast<byte, float>(raw).ToArray();
        }

        return [.. tensor.FloatData];
    }

    private static string AddInitializer(GraphProto graph, string name, TensorDataType type, IEnumerable<long> dims, byte[] raw)
    {
        var tensor = new TensorProto { Name = name, DataType = type, RawData = raw };
        tensor.Dims.AddRange(dims);
        graph.Initializer.Add(tensor);
        return name;
    }

    private static NodeProto NewNode(string opType, string name, IEnumerable<string> inputs, string output)
    {
        var node = new NodeProto { Name = name, OpType = opType };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        return node;
    }

    private static NodeProto Clone(NodeProto node)
    {
        var copy = new NodeProto { Name = node.Name, OpType = node.OpType, Domain = node.Domain, DocString = node.DocString };
        copy.Input.AddRange(node.Input);
        copy.Output.AddRange(node.Output);
        copy.Attribute.AddRange(node.Attribute);
        return copy;
    }

    /// <summary>Value and node names not yet used anywhere in the graph.</summary>
    private sealed class UniqueNames
    {
        private readonly HashSet<string> _used = new(StringComparer.Ordinal);

        public UniqueNames(GraphProto graph)
        {
            _used.UnionWith(graph.Input.Select(v => v.Name ?? ""));
            _used.UnionWith(graph.Initializer.Select(t => t.Name ?? ""));
            foreach (var node in graph.Node)
            {
                _used.UnionWith(node.Output);
                if (node.Name is { } name)
                {
                    _used.Add(name);
                }
            }
        }

        public string Claim(string name)
        {
            var candidate = name;
            for (var i = 1; !_used.Add(candidate); i++)
            {
                candidate = $"{name}_{i}";
            }

            return candidate;
        }
    }
}
