using ProtoBuf;

namespace NvDinoPipeline.Onnx.Proto;

public enum TensorDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    Complex64 = 14,
    Complex128 = 15,
    BFloat16 = 16,
}

public enum TensorDataLocation
{
    Default = 0,
    External = 1,
}

[ProtoContract]
public sealed class TensorProto
{
    [ProtoMember(1)] public List<long> Dims { get; } = [];
    [ProtoMember(2)] public TensorDataType DataType { get; set; }
    [ProtoMember(4, IsPacked = true)] public List<float> FloatData { get; } = [];
    [ProtoMember(5, IsPacked = true)] public List<int> Int32Data { get; } = [];
    [ProtoMember(6)] public List<byte[]> StringData { get; } = [];
    [ProtoMember(7, IsPacked = true)] public List<long> Int64Data { get; } = [];
    [ProtoMember(8)] public string? Name { get; set; }
    [ProtoMember(12)] public string? DocString { get; set; }

    /// <summary>Little-endian element bytes; the form this project writes for every tensor.</summary>
    [ProtoMember(9)] public byte[]? RawData { get; set; }

    /// <summary>Keys "location", "offset", "length" (and optionally "checksum") when <see cref="DataLocation"/> is External.</summary>
    [ProtoMember(13)] public List<StringStringEntryProto> ExternalData { get; } = [];
    [ProtoMember(14)] public TensorDataLocation DataLocation { get; set; }
    [ProtoMember(10, IsPacked = true)] public List<double> DoubleData { get; } = [];
    [ProtoMember(11, IsPacked = true)] public List<ulong> Uint64Data { get; } = [];
}
