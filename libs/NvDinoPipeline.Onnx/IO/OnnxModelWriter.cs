using System.Globalization;
using NvDinoPipeline.Onnx.Proto;
using ProtoBuf;

namespace NvDinoPipeline.Onnx;

public sealed record OnnxSaveOptions
{
    /// <summary>
    /// Total initializer bytes above which tensors go to an external data file. Protocol buffers cap a message
    /// at 2 GiB, so a model over that (vit_g) can only be loaded this way.
    /// </summary>
    public long ExternalDataThresholdBytes { get; init; } = 1_800_000_000;

    /// <summary>Tensors smaller than this stay inline even when the model uses external data (onnx's own default).</summary>
    public long MinExternalTensorBytes { get; init; } = 1024;

    /// <summary>Each external tensor starts at a multiple of this many bytes, so a runtime can map it in place.</summary>
    public int ExternalDataAlignment { get; init; } = 4096;
}

/// <summary>The files a save produced: the model, and the external data file when one was needed.</summary>
public sealed record OnnxSaveResult(string ModelPath, string? ExternalDataPath, long ModelBytes, long ExternalDataBytes)
{
    public IReadOnlyList<string> Files => ExternalDataPath is null ? [ModelPath] : [ModelPath, ExternalDataPath];
}

/// <summary>
/// Writes a <see cref="ModelProto"/> to disk. The framing of the model, the graph and each initializer is written
/// by hand so raw tensor bytes stream straight to the file instead of being buffered in a second copy of the
/// model. Files appear atomically (written beside the target, then renamed).
/// </summary>
public static class OnnxModelWriter
{
    private const int GraphField = 7;
    private const int InitializerField = 5;
    private const int RawDataField = 9;

    public static OnnxSaveResult Save(ModelProto model, string path) => Save(model, path, new OnnxSaveOptions());

    public static OnnxSaveResult Save(ModelProto model, string path, OnnxSaveOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ArgumentNullException.ThrowIfNull(options);
        if (options.ExternalDataAlignment < 1)
        {
            throw new ArgumentException($"OnnxSaveOptions.ExternalDataAlignment must be positive, got {options.ExternalDataAlignment}.", nameof(options));
        }

        var graph = model.Graph ?? throw new ArgumentException("The model has no graph.", nameof(model));
        path = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);

        var total = graph.Initializer.Sum(t => (long)(t.RawData?.Length ?? 0));
        string? dataPath = null;
        long dataBytes = 0;
        var externals = new Dictionary<TensorProto, (long Offset, long Length)>(ReferenceEqualityComparer.Instance);
        if (total > options.ExternalDataThresholdBytes)
        {
            dataPath = path + ".data";
            dataBytes = WriteExternalData(graph, dataPath, options, externals);
        }

        var location = dataPath is null ? null : Path.GetFileName(dataPath);
        WriteAtomically(path, stream => WriteModel(stream, model, graph, t => externals.TryGetValue(t, out var e) ? (location!, e.Offset, e.Length) : null));
        return new OnnxSaveResult(path, dataPath, new FileInfo(path).Length, dataBytes);
    }

    private static long WriteExternalData(GraphProto graph, string dataPath, OnnxSaveOptions options, Dictionary<TensorProto, (long, long)> externals)
    {
        long position = 0;
        WriteAtomically(dataPath, stream =>
        {
            foreach (var tensor in graph.Initializer)
            {
                if (tensor.RawData is not { } raw || raw.Length < options.MinExternalTensorBytes)
                {
                    continue;
                }

                var padding = (options.ExternalDataAlignment - position % options.ExternalDataAlignment) % options.ExternalDataAlignment;
                stream.Write(new byte[padding]);
                position += padding;
                externals[tensor] = (position, raw.Length);
                stream.Write(raw);
                position += raw.Length;
            }
        });
        return position;
    }

    private static void WriteModel(Stream stream, ModelProto model, GraphProto graph, Func<TensorProto, (string Location, long Offset, long Length)?> external)
    {
        var header = ShallowCopy(model);
        header.Graph = null;
        Serializer.Serialize(stream, header);

        var graphHeader = ShallowCopy(graph);
        graphHeader.Initializer.Clear();
        var graphBytes = Encode(graphHeader);
        var tensors = graph.Initializer.Select(t => Describe(t, external(t))).ToList();
        var graphLength = graphBytes.Length + tensors.Sum(t => FieldLength(InitializerField, t.Length));

        WriteTag(stream, GraphField);
        WriteVarint(stream, (ulong)graphLength);
        stream.Write(graphBytes);
        foreach (var tensor in tensors)
        {
            WriteTag(stream, InitializerField);
            WriteVarint(stream, (ulong)tensor.Length);
            stream.Write(tensor.Header);
            if (tensor.Raw is not null)
            {
                WriteTag(stream, RawDataField);
                WriteVarint(stream, (ulong)tensor.Raw.Length);
                stream.Write(tensor.Raw);
            }
        }
    }

    private static (byte[] Header, byte[]? Raw, long Length) Describe(TensorProto tensor, (string Location, long Offset, long Length)? external)
    {
        var header = new TensorProto
        {
            Name = tensor.Name,
            DataType = tensor.DataType,
            DocString = tensor.DocString,
            DataLocation = tensor.DataLocation,
        };
        header.Dims.AddRange(tensor.Dims);
        header.FloatData.AddRange(tensor.FloatData);
        header.Int32Data.AddRange(tensor.Int32Data);
        header.StringData.AddRange(tensor.StringData);
        header.Int64Data.AddRange(tensor.Int64Data);
        header.DoubleData.AddRange(tensor.DoubleData);
        header.Uint64Data.AddRange(tensor.Uint64Data);
        header.ExternalData.AddRange(tensor.ExternalData);
        var raw = tensor.RawData;
        if (external is { } e)
        {
            header.DataLocation = TensorDataLocation.External;
            header.ExternalData.Clear();
            header.ExternalData.Add(Entry("location", e.Location));
            header.ExternalData.Add(Entry("offset", e.Offset.ToString(CultureInfo.InvariantCulture)));
            header.ExternalData.Add(Entry("length", e.Length.ToString(CultureInfo.InvariantCulture)));
            raw = null;
        }

        var headerBytes = Encode(header);
        return (headerBytes, raw, headerBytes.Length + (raw is null ? 0 : FieldLength(RawDataField, raw.Length)));
    }

    private static StringStringEntryProto Entry(string key, string value) => new() { Key = key, Value = value };

    private static ModelProto ShallowCopy(ModelProto model)
    {
        var copy = new ModelProto
        {
            IrVersion = model.IrVersion,
            ProducerName = model.ProducerName,
            ProducerVersion = model.ProducerVersion,
            Domain = model.Domain,
            ModelVersion = model.ModelVersion,
            DocString = model.DocString,
            Graph = model.Graph,
        };
        copy.OpsetImport.AddRange(model.OpsetImport);
        copy.MetadataProps.AddRange(model.MetadataProps);
        return copy;
    }

    private static GraphProto ShallowCopy(GraphProto graph)
    {
        var copy = new GraphProto { Name = graph.Name, DocString = graph.DocString };
        copy.Node.AddRange(graph.Node);
        copy.Initializer.AddRange(graph.Initializer);
        copy.Input.AddRange(graph.Input);
        copy.Output.AddRange(graph.Output);
        copy.ValueInfo.AddRange(graph.ValueInfo);
        return copy;
    }

    private static byte[] Encode<T>(T message)
    {
        using var buffer = new MemoryStream();
        Serializer.Serialize(buffer, message);
        return buffer.ToArray();
    }

    private static long FieldLength(int field, long length) =>
        VarintLength((ulong)(field << 3 | 2)) + VarintLength((ulong)length) + length;

    private static int VarintLength(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    private static void WriteTag(Stream stream, int field) => WriteVarint(stream, (ulong)(field << 3 | 2));

    private static void WriteVarint(Stream stream, ulong value)
    {
        Span<byte> bytes = stackalloc byte[10];
        var n = 0;
        while (value >= 0x80)
        {
            bytes[n++] = (byte)(value | 0x80);
            value >>= 7;
        }

        bytes[n++] = (byte)value;
        stream.Write(bytes[..n]);
    }

    private static void WriteAtomically(string path, Action<Stream> write)
    {
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
