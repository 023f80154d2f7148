using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>
/// The safetensors format: an unsigned 64-bit little-endian header length, a UTF-8 JSON header
/// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}, then the raw
/// little-endian tensor data, offsets relative to the end of the header.
/// </summary>
public static class SafeTensors
{
    internal const string MetadataKey = "__metadata__";

    private static readonly Dictionary<string, ScalarType> TypesByName = new(StringComparer.Ordinal)
    {
        ["F64"] = ScalarType.Float64,
        ["F32"] = ScalarType.Float32,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["I64"] = ScalarType.Int64,
        ["I32"] = ScalarType.Int32,
        ["I16"] = ScalarType.Int16,
        ["I8"] = ScalarType.Int8,
        ["U8"] = ScalarType.Byte,
        ["BOOL"] = ScalarType.Bool,
    };

    /// <summary>Reads every tensor of a safetensors file into new CPU tensors.</summary>
    public static Dictionary<string, Tensor> Load(string path, CheckpointReadOptions? options = null)
    {
        using var file = SafeTensorsCheckpoint.OpenFile(path, options ?? new CheckpointReadOptions());
        return file.ReadAll();
    }

    /// <summary>The string metadata stored under "__metadata__" (empty when absent).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path, CheckpointReadOptions? options = null)
    {
        using var file = SafeTensorsCheckpoint.OpenFile(path, options ?? new CheckpointReadOptions());
        return file.Metadata;
    }

    /// <summary>
    /// Writes tensors (any device, any layout) to <paramref name="path"/>. The file is written next to the target and
    /// renamed over it, so readers never see a half-written checkpoint.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);

        var items = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in items)
        {
            if (string.IsNullOrEmpty(name) || name == MetadataKey)
                throw new ArgumentException($"Tensor name '{name}' is not allowed in a safetensors file.", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"Tensor name '{name}' appears twice.", nameof(tensors));
            _ = NameOf(tensor.dtype, name);
        }

        var header = BuildHeader(items, metadata);
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temp = System.IO.Path.Combine(directory, $".{System.IO.Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BitConverter.TryWriteBytes(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var (_, tensor) in items)
                    TensorBytes.Write(tensor, stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }

    internal static bool TryTypeOf(string name, out ScalarType dtype) => TypesByName.TryGetValue(name, out dtype);

    private static string NameOf(ScalarType dtype, string tensorName) =>
        TypesByName.FirstOrDefault(pair => pair.Value == dtype).Key
        ?? throw new ArgumentException($"Tensor '{tensorName}' has type {dtype}, which safetensors cannot store here.");

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> items, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in items)
            {
                var bytes = TensorBytes.ByteCount(tensor);
                json.WriteStartObject(name);
                json.WriteString("dtype", NameOf(tensor.dtype, name));
                json.WriteStartArray("shape");
                foreach (var dim in tensor.shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // The data section starts 8-byte aligned; the format pads the header with spaces.
        var padded = (buffer.Length + 7) / 8 * 8;
        while (buffer.Length < padded)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }
}

internal sealed class SafeTensorsCheckpoint : TensorCheckpoint
{
    private readonly FileStream stream;
    private readonly Dictionary<string, TensorEntry> entries;
    private readonly Dictionary<string, (long Begin, long End)> offsets;
    private readonly long dataStart;

    private SafeTensorsCheckpoint(string path, FileStream stream, Dictionary<string, TensorEntry> entries,
        Dictionary<string, (long Begin, long End)> offsets, long dataStart, IReadOnlyDictionary<string, string> metadata)
        : base(path)
    {
        this.stream = stream;
        this.entries = entries;
        this.offsets = offsets;
        this.dataStart = dataStart;
        Metadata = metadata;
    }

    public override CheckpointFormat Format => CheckpointFormat.SafeTensors;

    public override IReadOnlyDictionary<string, TensorEntry> Entries => entries;

    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafeTensorsCheckpoint OpenFile(string path, CheckpointReadOptions options)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Parse(path, stream, options);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public override Tensor Read(string name)
    {
        var entry = EntryOrThrow(name);
        var (begin, _) = offsets[name];
        lock (stream)
        {
            stream.Position = dataStart + begin;
            try
            {
                return TensorBytes.Read(stream, entry.DType, entry.Shape);
            }
            catch (EndOfStreamException ex)
            {
                throw new InvalidDataException($"Safetensors file '{Path}' ends inside tensor '{name}'.", ex);
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            stream.Dispose();
        base.Dispose(disposing);
    }

    private static SafeTensorsCheckpoint Parse(string path, FileStream stream, CheckpointReadOptions options)
    {
        var fileLength = stream.Length;
        Span<byte> lengthBytes = stackalloc byte[8];
        if (stream.ReadAtLeast(lengthBytes, 8, throwOnEndOfStream: false) < 8)
            throw new InvalidDataException($"Safetensors file '{path}' is shorter than its 8-byte header length.");
        var headerLength = BitConverter.ToUInt64(lengthBytes);
        if (headerLength == 0 || headerLength > (ulong)options.MaxHeaderBytes)
            throw new InvalidDataException(
                $"Safetensors file '{path}' declares a {headerLength}-byte header; the limit is {options.MaxHeaderBytes} bytes.");
        if (headerLength > (ulong)(fileLength - 8))
            throw new InvalidDataException(
                $"Safetensors file '{path}' declares a {headerLength}-byte header but holds only {fileLength - 8} bytes after the length.");

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        var dataStart = 8 + (long)headerLength;
        var dataLength = fileLength - dataStart;

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Safetensors file '{path}' has a header that is not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"Safetensors file '{path}' has a header that is not a JSON object.");

            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var offsets = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == SafeTensors.MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                var (entry, range) = ReadEntry(path, property, dataLength);
                if (!entries.TryAdd(entry.Name, entry))
                    throw new InvalidDataException($"Safetensors file '{path}' lists tensor '{entry.Name}' twice.");
                offsets[entry.Name] = range;
            }
            return new SafeTensorsCheckpoint(path, stream, entries, offsets, dataStart, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"Safetensors file '{path}' has a __metadata__ entry that is not an object.");
        foreach (var item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException($"Safetensors file '{path}' has metadata '{item.Name}' that is not a string.");
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static (TensorEntry Entry, (long Begin, long End) Range) ReadEntry(string path, JsonProperty property, long dataLength)
    {
        var name = property.Name;
        var value = property.Value;
        InvalidDataException Bad(string what) => new($"Safetensors file '{path}': tensor '{name}' {what}.");

        if (value.ValueKind != JsonValueKind.Object)
            throw Bad("is not described by a JSON object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("has no dtype");
        var dtypeName = dtypeElement.GetString()!;
        if (!SafeTensors.TryTypeOf(dtypeName, out var dtype))
            throw Bad($"has unsupported dtype {dtypeName}");
        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Bad("has no shape");
        var shape = new long[shapeElement.GetArrayLength()];
        var index = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var size) || size < 0)
                throw Bad("has a shape entry that is not a non-negative integer");
            shape[index++] = size;
        }
        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
            throw Bad("has no [begin, end] data_offsets");
        var begin = offsetsElement[0].TryGetInt64(out var b) ? b : -1;
        var end = offsetsElement[1].TryGetInt64(out var e) ? e : -1;
        if (begin < 0 || end < begin || end > dataLength)
            throw Bad($"has data_offsets [{offsetsElement[0]}, {offsetsElement[1]}] outside the {dataLength}-byte data section");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (acc, dim) => checked(acc * dim)) * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw Bad("has a shape too large to address");
        }
        if (end - begin != expected)
            throw Bad($"occupies {end - begin} bytes but {dtypeName} [{string.Join(", ", shape)}] needs {expected}");
        return (new TensorEntry(name, dtype, shape), (begin, end));
    }

    internal static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"Element type {dtype} is not supported."),
    };
}
