using ProtoBuf;

namespace NvDinoPipeline.Onnx.Proto;

[ProtoContract]
public sealed class GraphProto
{
    [ProtoMember(1)] public List<NodeProto> Node { get; } = [];
    [ProtoMember(2)] public string? Name { get; set; }
    [ProtoMember(5)] public List<TensorProto> Initializer { get; } = [];
    [ProtoMember(10)] public string? DocString { get; set; }
    [ProtoMember(11)] public List<ValueInfoProto> Input { get; } = [];
    [ProtoMember(12)] public List<ValueInfoProto> Output { get; } = [];
    [ProtoMember(13)] public List<ValueInfoProto> ValueInfo { get; } = [];
}

[ProtoContract]
public sealed class NodeProto
{
    /// <summary>An empty string marks an omitted optional input.</summary>
    [ProtoMember(1)] public List<string> Input { get; } = [];
    [ProtoMember(2)] public List<string> Output { get; } = [];
    [ProtoMember(3)] public string? Name { get; set; }
    [ProtoMember(4)] public string? OpType { get; set; }
    [ProtoMember(7)] public string? Domain { get; set; }
    [ProtoMember(5)] public List<AttributeProto> Attribute { get; } = [];
    [ProtoMember(6)] public string? DocString { get; set; }
}

[ProtoContract]
public sealed class ValueInfoProto
{
    [ProtoMember(1)] public string? Name { get; set; }
    [ProtoMember(2)] public TypeProto? Type { get; set; }
    [ProtoMember(3)] public string? DocString { get; set; }
}
