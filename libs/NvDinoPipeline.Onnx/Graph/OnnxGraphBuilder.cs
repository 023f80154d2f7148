using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Onnx;

/// <summary>
/// Builds one ONNX graph node by node. Node and value names are generated from the op type under the current
/// <see cref="Scope"/> (for example <c>/blocks.3/attn/MatMul_1</c>), so an engine builder's per-layer options
/// can address them; every value name is checked for uniqueness and every node input for a producer.
/// </summary>
public sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph;
    private readonly HashSet<string> _values = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _nodeNameUses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    private readonly List<string> _scopes = [];

    public OnnxGraphBuilder(string graphName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(graphName);
        _graph = new GraphProto { Name = graphName };
    }

    /// <summary>Total bytes of initializer data added so far.</summary>
    public long InitializerBytes { get; private set; }

    /// <summary>Prefixes generated node names with <paramref name="name"/> until the returned scope is disposed.</summary>
    public IDisposable Scope(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _scopes.Add(name);
        return new ScopeExit(this, _scopes.Count);
    }

    public string AddInput(string name, TensorDataType elementType, IReadOnlyList<OnnxDim> shape)
    {
        Claim(name);
        _graph.Input.Add(ValueInfo(name, elementType, shape));
        return name;
    }

    /// <summary>Declares an existing value as a graph output.</summary>
    public void AddOutput(string name, TensorDataType elementType, IReadOnlyList<OnnxDim> shape)
    {
        if (!_values.Contains(name))
        {
            throw new InvalidOperationException($"Graph output '{name}' is not produced by any node, input or initializer.");
        }

        if (_graph.Output.Any(o => o.Name == name))
        {
            throw new InvalidOperationException($"Graph output '{name}' is declared twice.");
        }

        _graph.Output.Add(ValueInfo(name, elementType, shape));
    }

    public string AddInitializer(string name, ReadOnlySpan<float> values, IReadOnlyList<long> shape) =>
        AddInitializer(name, TensorDataType.Float, MemoryMarshal.AsBytes(values), values.Length, shape);

    /// <summary>
    /// Adds a float32 initializer whose values <paramref name="fill"/> writes from <paramref name="state"/> straight
    /// into the tensor's storage (for example a transposed weight), so no intermediate array is allocated.
    /// </summary>
    public string AddInitializer<TState>(string name, IReadOnlyList<long> shape, TState state, SpanAction<float, TState> fill)
    {
        ArgumentNullException.ThrowIfNull(fill);
        var count = shape.Aggregate(1L, (a, d) => a * d);
        if (shape.Any(d => d < 0) || count * sizeof(float) > Array.MaxLength)
        {
            throw new ArgumentException($"Initializer '{name}' has an invalid or too large shape [{string.Join(", ", shape)}].", nameof(shape));
        }

        var bytes = new byte[count * sizeof(float)];
        fill(MemoryMarshal.Cast<byte, float>(bytes.AsSpan()), state);
        return AddTensor(name, TensorDataType.Float, bytes, shape);
    }

    public string AddInitializer(string name, ReadOnlySpan<long> values, IReadOnlyList<long> shape) =>
        AddInitializer(name, TensorDataType.Int64, MemoryMarshal.AsBytes(values), values.Length, shape);

    /// <summary>A 1-D int64 constant, shared by every use of the same values.</summary>
    public string Int64Constant(params long[] values) =>
        Constant("i64", values.Select(v => v.ToString(CultureInfo.InvariantCulture)), n => AddInitializer(n, values, [values.Length]));

    /// <summary>A rank-0 int64 constant (for example a Gather index that drops the axis).</summary>
    public string Int64Scalar(long value) =>
        Constant("i64_scalar", [value.ToString(CultureInfo.InvariantCulture)], n => AddInitializer(n, [value], []));

    /// <summary>A 1-D float constant, shared by every use of the same values.</summary>
    public string FloatConstant(params float[] values) =>
        Constant("f32", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture)), n => AddInitializer(n, values, [values.Length]));

    /// <summary>A rank-0 float constant.</summary>
    public string FloatScalar(float value) =>
        Constant("f32_scalar", [value.ToString("R", CultureInfo.InvariantCulture)], n => AddInitializer(n, [value], []));

    /// <summary>Adds a node with one output and returns the output's name (<paramref name="output"/> when given).</summary>
    public string AddNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<AttributeProto>? attributes = null, string? output = null)
    {
        var node = NewNode(opType, inputs, attributes);
        var name = output ?? $"{node.Name}_output_0";
        Claim(name);
        node.Output.Add(name);
        _graph.Node.Add(node);
        return name;
    }

    /// <summary>Adds a node with <paramref name="outputCount"/> outputs and returns their names.</summary>
    public IReadOnlyList<string> AddNode(string opType, IReadOnlyList<string> inputs, int outputCount, IReadOnlyList<AttributeProto>? attributes = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(outputCount, 1);
        var node = NewNode(opType, inputs, attributes);
        for (var i = 0; i < outputCount; i++)
        {
            var name = $"{node.Name}_output_{i}";
            Claim(name);
            node.Output.Add(name);
        }

        _graph.Node.Add(node);
        return node.Output;
    }

    /// <summary>Wraps the graph in a model importing the default ONNX domain at <paramref name="opset"/>.</summary>
    public ModelProto ToModel(int opset, string producerName, string producerVersion, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (_graph.Output.Count == 0)
        {
            throw new InvalidOperationException($"Graph '{_graph.Name}' has no output.");
        }

        var model = new ModelProto
        {
            IrVersion = OnnxVersions.IrVersionForOpset(opset),
            ProducerName = producerName,
            ProducerVersion = producerVersion,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        return model;
    }

    private string AddInitializer(string name, TensorDataType type, ReadOnlySpan<byte> bytes, int count, IReadOnlyList<long> shape)
    {
        var expected = shape.Aggregate(1L, (a, d) => a * d);
        if (shape.Any(d => d < 0) || expected != count)
        {
            throw new ArgumentException($"Initializer '{name}' has {count} values but shape [{string.Join(", ", shape)}] holds {expected}.", nameof(shape));
        }

        return AddTensor(name, type, bytes.ToArray(), shape);
    }

    private string AddTensor(string name, TensorDataType type, byte[] bytes, IReadOnlyList<long> shape)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian; this writer does not byte-swap.");
        }

        Claim(name);
        var tensor = new TensorProto { Name = name, DataType = type, RawData = bytes };
        tensor.Dims.AddRange(shape);
        _graph.Initializer.Add(tensor);
        InitializerBytes += bytes.Length;
        return name;
    }

    private string Constant(string kind, IEnumerable<string> values, Func<string, string> add)
    {
        var key = kind + ":" + string.Join(",", values);
        if (_constants.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var name = $"const_{kind}_{_constants.Count}";
        add(name);
        _constants[key] = name;
        return name;
    }

    private NodeProto NewNode(string opType, IReadOnlyList<string> inputs, IReadOnlyList<AttributeProto>? attributes)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(opType);
        foreach (var input in inputs)
        {
            // An empty name is ONNX's marker for an omitted optional input.
            if (input.Length > 0 && !_values.Contains(input))
            {
                throw new InvalidOperationException($"Input '{input}' of a new {opType} node is not produced by any earlier node, input or initializer.");
            }
        }

        var baseName = "/" + string.Concat(_scopes.Select(s => s + "/")) + opType;
        var uses = _nodeNameUses.GetValueOrDefault(baseName);
        _nodeNameUses[baseName] = uses + 1;
        var node = new NodeProto { Name = uses == 0 ? baseName : $"{baseName}_{uses}", OpType = opType };
        node.Input.AddRange(inputs);
        if (attributes is not null)
        {
            node.Attribute.AddRange(attributes);
        }

        return node;
    }

    private void Claim(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (!_values.Add(name))
        {
            throw new InvalidOperationException($"Value name '{name}' is already used in graph '{_graph.Name}'.");
        }
    }

    private static ValueInfoProto ValueInfo(string name, TensorDataType elementType, IReadOnlyList<OnnxDim> shape)
    {
        var tensorShape = new TensorShapeProto();
        tensorShape.Dim.AddRange(shape.Select(d => new DimensionProto { DimValue = d.Value, DimParam = d.Param }));
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TensorTypeProto { ElemType = elementType, Shape = tensorShape } },
        };
    }

    private sealed class ScopeExit(OnnxGraphBuilder builder, int depth) : IDisposable
    {
        private bool _disposed;

        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            if (builder._scopes.Count != depth)
            {
                throw new InvalidOperationException("Graph builder scopes must be closed in the reverse order they were opened.");
            }

            builder._scopes.RemoveAt(depth - 1);
            _disposed = true;
        }
    }
}
