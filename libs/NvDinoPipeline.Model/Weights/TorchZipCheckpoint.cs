using System.IO.Compression;
using System.Text;
using NvDinoPipeline.Model.Weights.Pickle;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Weights;

/// <summary>A storage named by a persistent id: ('storage', torch.FloatStorage, key, location, numel).</summary>
internal sealed record TorchStorageReference(string Key, ScalarType DType, long NumElements);

/// <summary>A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view of a storage.</summary>
internal sealed record TorchTensorReference(TorchStorageReference Storage, long StorageOffset, long[] Shape, long[] Stride);

/// <summary>
/// Reads torch.save archives: a zip with &lt;name&gt;/data.pkl (the pickled object) and &lt;name&gt;/data/&lt;key&gt;
/// (one raw little-endian file per storage).
/// </summary>
internal sealed class TorchZipCheckpoint : TensorCheckpoint
{
    private const int MaxNestingDepth = 16;

    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ScalarType.Float32,
        ["DoubleStorage"] = ScalarType.Float64,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
        ["UntypedStorage"] = ScalarType.Byte,
    };

    private static readonly HashSet<string> TensorGlobals = new(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "collections.OrderedDict",
    };

    // Plain data that checkpoints carry next to the weights (training arguments, numpy scalars, devices). They are
    // kept as opaque placeholders: never constructed, never called.
    private static readonly HashSet<string> InertGlobals = new(StringComparer.Ordinal)
    {
        "argparse.Namespace",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.complex",
        "__builtin__.set",
        "_codecs.encode",
        "numpy.dtype",
        "numpy.ndarray",
        "numpy.core.multiarray.scalar",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.multiarray._reconstruct",
        "torch.device",
        "torch.Size",
        "torch.float32",
        "torch.float16",
        "torch.bfloat16",
        "torch.float64",
        "torch.int64",
        "torch.int32",
        "torch.uint8",
        "torch.bool",
    };

    private readonly ZipArchive archive;
    private readonly string prefix;
    private readonly Dictionary<string, TensorEntry> entries;
    private readonly Dictionary<string, TorchTensorReference> references;

    private TorchZipCheckpoint(string path, ZipArchive archive, string prefix,
        Dictionary<string, TensorEntry> entries, Dictionary<string, TorchTensorReference> references)
        : base(path)
    {
        this.archive = archive;
        this.prefix = prefix;
        this.entries = entries;
        this.references = references;
    }

    public override CheckpointFormat Format => CheckpointFormat.PyTorch;

    public override IReadOnlyDictionary<string, TensorEntry> Entries => entries;

    public static TorchZipCheckpoint OpenFile(string path, CheckpointReadOptions options)
    {
        ZipArchive archive;
        try
        {
            archive = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"Checkpoint '{path}' is not a readable zip archive: {ex.Message}", ex);
        }

        try
        {
            var pickleEntry = archive.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)
                                                                  && e.FullName.IndexOf('/') == e.FullName.Length - "/data.pkl".Length)
                ?? throw new InvalidDataException($"Checkpoint '{path}' is a zip archive without <name>/data.pkl; it is not a torch.save file.");
            var prefix = pickleEntry.FullName[..^"data.pkl".Length];

            var byteOrder = archive.GetEntry(prefix + "byteorder");
            if (byteOrder is not null)
            {
                var order = ReadSmallText(byteOrder, 16);
                if (order.Trim() != "little")
                    throw new InvalidDataException($"Checkpoint '{path}' stores {order.Trim()}-endian tensors; only little-endian is supported.");
            }

            if (pickleEntry.Length > options.MaxPickleBytes)
                throw new InvalidDataException(
                    $"Checkpoint '{path}' has a {pickleEntry.Length}-byte data.pkl; the limit is {options.MaxPickleBytes} bytes.");
            var pickle = new byte[pickleEntry.Length];
            using (var stream = pickleEntry.Open())
                stream.ReadExactly(pickle);

            object? root;
            try
            {
                root = Unpickle(pickle, options);
            }
            catch (InvalidDataException ex)
            {
                throw new InvalidDataException($"Checkpoint '{path}': {ex.Message}", ex);
            }

            var references = new Dictionary<string, TorchTensorReference>(StringComparer.Ordinal);
            Flatten(root, "", references, 0);
            var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            foreach (var (name, reference) in references)
                entries[name] = new TensorEntry(name, reference.Storage.DType, reference.Shape);
            return new TorchZipCheckpoint(path, archive, prefix, entries, references);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    public override Tensor Read(string name)
    {
        EntryOrThrow(name);
        var reference = references[name];
        var storage = reference.Storage;
        var elementSize = SafeTensorsCheckpoint.ElementSize(storage.DType);
        var expectedBytes = checked(storage.NumElements * elementSize);

        var entry = archive.GetEntry($"{prefix}data/{storage.Key}")
            ?? throw new InvalidDataException($"Checkpoint '{Path}' lacks the storage file data/{storage.Key} of tensor '{name}'.");
        if (entry.Length != expectedBytes)
            throw new InvalidDataException(
                $"Checkpoint '{Path}': storage data/{storage.Key} of tensor '{name}' holds {entry.Length} bytes, expected {expectedBytes}.");

        CheckView(name, reference);

        lock (archive)
        {
            using var stream = entry.Open();
            using var flat = TensorBytes.Read(stream, storage.DType, [storage.NumElements]);
            using var view = flat.as_strided(reference.Shape, reference.Stride, reference.StorageOffset);
            return view.contiguous().clone();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            archive.Dispose();
        base.Dispose(disposing);
    }

    private void CheckView(string name, TorchTensorReference reference)
    {
        if (reference.Shape.Length != reference.Stride.Length)
            throw new InvalidDataException($"Checkpoint '{Path}': tensor '{name}' has {reference.Shape.Length} sizes but {reference.Stride.Length} strides.");
        if (reference.StorageOffset < 0 || reference.Shape.Any(s => s < 0) || reference.Stride.Any(s => s < 0))
            throw new InvalidDataException($"Checkpoint '{Path}': tensor '{name}' has a negative size, stride or offset.");
        if (reference.Shape.Any(s => s == 0))
            return;
        long last;
        try
        {
            last = reference.StorageOffset;
            for (var i = 0; i < reference.Shape.Length; i++)
                last = checked(last + (reference.Shape[i] - 1) * reference.Stride[i]);
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"Checkpoint '{Path}': tensor '{name}' addresses beyond any storage.");
        }
        if (last >= reference.Storage.NumElements)
            throw new InvalidDataException(
                $"Checkpoint '{Path}': tensor '{name}' reaches element {last} of a {reference.Storage.NumElements}-element storage.");
    }

    private static string ReadSmallText(ZipArchiveEntry entry, int limit)
    {
        if (entry.Length > limit)
            return "unknown";
        using var stream = entry.Open();
        var buffer = new byte[entry.Length];
        stream.ReadExactly(buffer);
        return Encoding.ASCII.GetString(buffer);
    }

    private static object? Unpickle(byte[] pickle, CheckpointReadOptions options)
    {
        var machine = new PickleMachine(
            resolveGlobal: global => ResolveGlobal(global, options),
            call: CallGlobal,
            persistentLoad: LoadPersistent);
        return machine.Load(pickle);
    }

    private static PickleGlobal ResolveGlobal(PickleGlobal global, CheckpointReadOptions options)
    {
        var name = global.ToString();
        if (TensorGlobals.Contains(name) || InertGlobals.Contains(name) || options.AllowUnlistedGlobals)
            return global;
        if (global.Module == "torch" && StorageTypes.ContainsKey(global.Name))
            return global;
        throw new InvalidDataException(
            $"The pickle references {name}, which is not among the globals a weights file needs " +
            $"(set {nameof(CheckpointReadOptions)}.{nameof(CheckpointReadOptions.AllowUnlistedGlobals)} to read past it as opaque data)");
    }

    private static object? CallGlobal(PickleGlobal global, object?[] arguments)
    {
        switch (global.ToString())
        {
            case "torch._utils._rebuild_tensor_v2":
            case "torch._utils._rebuild_tensor":
                if (arguments.Length < 4 || arguments[0] is not TorchStorageReference storage || arguments[1] is not long offset)
                    throw new InvalidDataException($"The pickle calls {global} with arguments that are not (storage, offset, size, stride, ...)");
                return new TorchTensorReference(storage, offset, ToLongs(arguments[2], "size"), ToLongs(arguments[3], "stride"));
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (arguments.Length < 1 || arguments[0] is not TorchTensorReference tensor)
                    throw new InvalidDataException($"The pickle calls {global} without a tensor");
                return tensor;
            case "collections.OrderedDict":
                var dict = new PickleDict();
                if (arguments.Length > 0 && arguments[0] is List<object?> pairs)
                {
                    foreach (var pair in pairs)
                    {
                        if (pair is not object?[] { Length: 2 } kv)
                            throw new InvalidDataException("The pickle builds an OrderedDict from items that are not pairs");
                        dict.Set(kv[0], kv[1]);
                    }
                }
                return dict;
            default:
                return new OpaqueObject(global, arguments);
        }
    }

    private static object? LoadPersistent(object? id)
    {
        if (id is not object?[] { Length: >= 5 } tuple || tuple[0] is not "storage")
            throw new InvalidDataException("The pickle has a persistent id that is not a ('storage', type, key, location, numel) tuple");
        if (tuple[1] is not PickleGlobal type || type.Module != "torch" || !StorageTypes.TryGetValue(type.Name, out var dtype))
            throw new InvalidDataException($"The pickle names storage type {tuple[1]}, which is not supported");
        if (tuple[2] is not string key || key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
            throw new InvalidDataException($"The pickle names storage key '{tuple[2]}', which is not a plain file name");
        if (tuple[4] is not long numel || numel < 0)
            throw new InvalidDataException($"The pickle gives storage {key} a size that is not a non-negative integer");
        return new TorchStorageReference(key, dtype, numel);
    }

    private static long[] ToLongs(object? value, string what)
    {
        if (value is not object?[] tuple)
            throw new InvalidDataException($"The pickle gives a tensor {what} that is not a tuple");
        var result = new long[tuple.Length];
        for (var i = 0; i < tuple.Length; i++)
            result[i] = tuple[i] is long item ? item : throw new InvalidDataException($"The pickle gives a tensor {what} with a non-integer entry");
        return result;
    }

    // Dictionaries nest (checkpoint → "model" → state dict); their tensors are listed with dotted paths.
    private static void Flatten(object? node, string path, Dictionary<string, TorchTensorReference> into, int depth)
    {
        switch (node)
        {
            case TorchTensorReference tensor when path.Length > 0:
                into.TryAdd(path, tensor);
                break;
            case PickleDict dict when depth < MaxNestingDepth:
                foreach (var (key, value) in dict.Items)
                {
                    var name = key switch
                    {
                        string text => text,
                        long or bool => Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture)!,
                        _ => null,
                    };
                    if (name is not null)
                        Flatten(value, path.Length == 0 ? name : $"{path}.{name}", into, depth + 1);
                }
                break;
        }
    }
}
