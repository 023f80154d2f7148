using ProtoBuf;

namespace NvDinoPipeline.Onnx.Proto;

// Field numbers follow onnx/onnx.proto (IR version 8). Only the fields this project writes or reads are mapped;
// unknown fields of models written elsewhere are skipped on read.

[ProtoContract]
public sealed class ModelProto
{
    [ProtoMember(1)] public long IrVersion { get; set; }
    [ProtoMember(8)] public List<OperatorSetIdProto> OpsetImport { get; } = [];
    [ProtoMember(2)] public string? ProducerName { get; set; }
    [ProtoMember(3)] public string? ProducerVersion { get; set; }
    [ProtoMember(4)] public string? Domain { get; set; }
    [ProtoMember(5)] public long ModelVersion { get; set; }
    [ProtoMember(6)] public string? DocString { get; set; }
    [ProtoMember(7)] public GraphProto? Graph { get; set; }
    [ProtoMember(14)] public List<StringStringEntryProto> MetadataProps { get; } = [];
}

[ProtoContract]
public sealed class OperatorSetIdProto
{
    /// <summary>Empty or null means the default ONNX domain "ai.onnx".</summary>
    [ProtoMember(1)] public string? Domain { get; set; }
    [ProtoMember(2)] public long Version { get; set; }
}

[ProtoContract]
public sealed class StringStringEntryProto
{
    [ProtoMember(1)] public string? Key { get; set; }
    [ProtoMember(2)] public string? Value { get; set; }
}
