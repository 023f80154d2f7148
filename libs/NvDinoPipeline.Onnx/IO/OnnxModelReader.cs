using System.Globalization;
using NvDinoPipeline.Onnx.Proto;
using ProtoBuf;

namespace NvDinoPipeline.Onnx;

public static class OnnxModelReader
{
    /// <summary>
    /// Reads a model file. With <paramref name="loadExternalData"/>, tensors stored in external data files (resolved
    /// relative to the model's folder) are read back into <see cref="TensorProto.RawData"/> and marked inline.
    /// </summary>
    public static ModelProto Load(string path, bool loadExternalData = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        ModelProto model;
        using (var stream = File.OpenRead(path))
        {
            model = Serializer.Deserialize<ModelProto>(stream);
        }

        if (model.Graph is null)
        {
            throw new InvalidDataException($"'{path}' holds no ONNX graph.");
        }

        if (loadExternalData)
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
            foreach (var tensor in model.Graph.Initializer.Where(t => t.DataLocation == TensorDataLocation.External))
            {
                tensor.RawData = ReadExternal(folder, tensor);
                tensor.DataLocation = TensorDataLocation.Default;
                tensor.ExternalData.Clear();
            }
        }

        return model;
    }

    private static byte[] ReadExternal(string folder, TensorProto tensor)
    {
        string? Value(string key) => tensor.ExternalData.FirstOrDefault(e => e.Key == key)?.Value;
        var location = Value("location") ?? throw new InvalidDataException($"External tensor '{tensor.Name}' has no location.");
        var file = Path.GetFullPath(Path.Combine(folder, location));
        if (!file.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidDataException($"External tensor '{tensor.Name}' points outside the model folder: '{location}'.");
        }

        var offset = Value("offset") is { } o ? long.Parse(o, CultureInfo.InvariantCulture) : 0;
        using var stream = File.OpenRead(file);
        var length = Value("length") is { } l ? long.Parse(l, CultureInfo.InvariantCulture) : stream.Length - offset;
        var bytes = new byte[length];
        stream.Seek(offset, SeekOrigin.Begin);
        stream.ReadExactly(bytes);
        return bytes;
    }
}
