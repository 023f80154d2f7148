using ProtoBuf;

namespace NvDinoPipeline.Onnx.Proto;

public enum AttributeType
{
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Graph = 5,
    Floats = 6,
    Ints = 7,
    Strings = 8,
    Tensors = 9,
    Graphs = 10,
    SparseTensor = 11,
    SparseTensors = 12,
    TypeProto = 13,
    TypeProtos = 14,
}

[ProtoContract]
public sealed class AttributeProto
{
    [ProtoMember(1)] public string? Name { get; set; }
    [ProtoMember(21)] public string? RefAttrName { get; set; }
    [ProtoMember(13)] public string? DocString { get; set; }
    [ProtoMember(20)] public AttributeType Type { get; set; }

    // Nullable scalars keep proto2 presence: a zero value is still written when it is set.
    [ProtoMember(2)] public float? F { get; set; }
    [ProtoMember(3)] public long? I { get; set; }
    [ProtoMember(4)] public byte[]? S { get; set; }
    [ProtoMember(5)] public TensorProto? T { get; set; }
    [ProtoMember(6)] public GraphProto? G { get; set; }
    [ProtoMember(7)] public List<float> Floats { get; } = [];
    [ProtoMember(8)] public List<long> Ints { get; } = [];
    [ProtoMember(9)] public List<byte[]> Strings { get; } = [];
    [ProtoMember(10)] public List<TensorProto> Tensors { get; } = [];
    [ProtoMember(11)] public List<GraphProto> Graphs { get; } = [];
}
