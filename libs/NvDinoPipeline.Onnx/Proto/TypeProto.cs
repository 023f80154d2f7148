using ProtoBuf;

namespace NvDinoPipeline.Onnx.Proto;

[ProtoContract]
public sealed class TypeProto
{
    [ProtoMember(1)] public TensorTypeProto? TensorType { get; set; }
    [ProtoMember(6)] public string? Denotation { get; set; }
}

/// <summary>onnx.proto's <c>TypeProto.Tensor</c>.</summary>
[ProtoContract]
public sealed class TensorTypeProto
{
    [ProtoMember(1)] public TensorDataType ElemType { get; set; }
    [ProtoMember(2)] public TensorShapeProto? Shape { get; set; }
}

[ProtoContract]
public sealed class TensorShapeProto
{
    [ProtoMember(1)] public List<DimensionProto> Dim { get; } = [];
}

/// <summary>onnx.proto's <c>TensorShapeProto.Dimension</c>: a fixed size, a named symbolic size, or unknown.</summary>
[ProtoContract]
public sealed class DimensionProto
{
    [ProtoMember(1)] public long? DimValue { get; set; }
    [ProtoMember(2)] public string? DimParam { get; set; }
    [ProtoMember(3)] public string? Denotation { get; set; }
}
