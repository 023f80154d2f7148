using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>
/// Read access to the tensors of a checkpoint file (safetensors or a torch.save zip), format detected from the
/// file's first bytes. Entries are listed up front; tensor data is read on demand.
/// Nested dictionaries of a .pth are flattened with dots: {"teacher": {"backbone.cls_token": t}} lists
/// "teacher.backbone.cls_token".
/// </summary>
public abstract class TensorCheckpoint : IDisposable
{
    private protected TensorCheckpoint(string path)
    {
        Path = path;
    }

    public string Path { get; }

    public abstract CheckpointFormat Format { get; }

    public abstract IReadOnlyDictionary<string, TensorEntry> Entries { get; }

    public static TensorCheckpoint Open(string path, CheckpointReadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new CheckpointReadOptions();
        if (!File.Exists(path))
            throw new FileNotFoundException($"Checkpoint '{path}' does not exist.", path);

        Span<byte> magic = stackalloc byte[4];
        using (var probe = File.OpenRead(path))
        {
            var read = probe.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            if (read < magic.Length)
                throw new InvalidDataException($"Checkpoint '{path}' is {read} bytes long, too short to be a checkpoint.");
        }
        if (magic is [(byte)'P', (byte)'K', 3, 4])
            return TorchZipCheckpoint.OpenFile(path, options);
        if (magic[0] == 0x80 && magic[1] <= 5)
            throw new InvalidDataException(
                $"Checkpoint '{path}' uses torch's legacy (pre-1.6) serialization; re-save it with torch.save's default zip format.");
        return SafeTensorsCheckpoint.OpenFile(path, options);
    }

    /// <summary>A new CPU tensor holding the named entry; the caller owns it.</summary>
    public abstract Tensor Read(string name);

    /// <summary>Reads every entry (or those <paramref name="include"/> accepts) into new CPU tensors.</summary>
    public Dictionary<string, Tensor> ReadAll(Func<string, bool>? include = null)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in Entries.Keys)
            {
                if (include is null || include(name))
                    result[name] = Read(name);
            }
            return result;
        }
        catch
        {
            foreach (var tensor in result.Values)
                tensor.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }

    private protected TensorEntry EntryOrThrow(string name) =>
        Entries.TryGetValue(name, out var entry)
            ? entry
            : throw new KeyNotFoundException($"Checkpoint '{Path}' has no tensor named '{name}'.");
}

/// <summary>Limits and trust settings for reading checkpoint files, which may come from anywhere.</summary>
public sealed record CheckpointReadOptions
{
    /// <summary>Largest safetensors JSON header accepted (the format's own limit is 100 MB).</summary>
    public long MaxHeaderBytes { get; init; } = 100L * 1024 * 1024;

    /// <summary>Largest data.pkl of a torch.save archive accepted.</summary>
    public long MaxPickleBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>
    /// A .pth pickle may only name the globals torch.save emits for tensors and dictionaries, plus a few inert
    /// data types. When true, any other global becomes an opaque placeholder instead of an error. The reader never
    /// runs code either way; this only matters for checkpoints that pickle custom objects next to the weights.
    /// </summary>
    public bool AllowUnlistedGlobals { get; init; }
}
