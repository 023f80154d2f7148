using System.IO.Compression;
using System.Text;
using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

public sealed class TorchCheckpointTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("pth-tests-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void Lists_nested_tensors_with_dotted_names_and_reads_them()
    {
        using var checkpoint = TensorCheckpoint.Open(Fixture.PathOf("dinov2_training_checkpoint.pth"));

        Assert.Equal(CheckpointFormat.PyTorch, checkpoint.Format);
        Assert.Contains("model.teacher.backbone.blocks.0.1.mlp.fc2.weight", checkpoint.Entries.Keys);
        Assert.Contains("optimizer.state.0.exp_avg", checkpoint.Entries.Keys);
        var entry = checkpoint.Entries["model.teacher.dino_head.mlp.0.weight"];
        Assert.Equal([8L, 16L], entry.Shape);
        Assert.Equal(ScalarType.Float32, entry.DType);
        using var value = checkpoint.Read("model.teacher.dino_head.mlp.0.weight");
        Assert.Equal([8L, 16L], value.shape);
    }

    [Fact]
    public void Reads_a_strided_view_of_a_shared_storage()
    {
        // Storage of 6 floats 0..5; "t" is its transpose as a 3x2 view starting at element 0, "u" the last 2 elements.
        var storage = Enumerable.Range(0, 6).SelectMany(i => BitConverter.GetBytes((float)i)).ToArray();
        var pickle = new PickleWriter().Proto().EmptyDict()
            .Mark()
            .Str("t").RebuildTensor("0", 6, offset: 0, size: [3, 2], stride: [1, 3])
            .Str("u").RebuildTensor("0", 6, offset: 4, size: [2], stride: [1])
            .SetItems().Stop();
        var path = WriteArchive("view.pth", pickle, ("0", storage));

        using var checkpoint = TensorCheckpoint.Open(path);
        using var t = checkpoint.Read("t");
        using var u = checkpoint.Read("u");

        Assert.Equal([0f, 3f, 1f, 4f, 2f, 5f], t.data<float>().ToArray());
        Assert.Equal([4f, 5f], u.data<float>().ToArray());
    }

    [Fact]
    public void Refuses_a_global_outside_the_allowed_list_and_names_it()
    {
        var pickle = new PickleWriter().Proto().Global("os", "system").Str("echo pwned").Tuple1().Reduce().Stop();
        var path = WriteArchive("evil.pth", pickle);

        var error = Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(path));

        Assert.Contains("os.system", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Unlisted_globals_can_be_read_past_as_data_when_allowed()
    {
        var storage = new byte[8];
        var pickle = new PickleWriter().Proto().EmptyDict()
            .Mark()
            .Str("args").Global("mytrainer.config", "Settings").EmptyTuple().Reduce()
            .Str("w").RebuildTensor("0", 2, offset: 0, size: [2], stride: [1])
            .SetItems().Stop();
        var path = WriteArchive("custom.pth", pickle, ("0", storage));

        Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(path));
        using var checkpoint = TensorCheckpoint.Open(path, new CheckpointReadOptions { AllowUnlistedGlobals = true });

        Assert.Equal(["w"], checkpoint.Entries.Keys);
    }

    [Fact]
    public void Refuses_a_storage_key_that_leaves_the_archive_folder()
    {
        var pickle = new PickleWriter().Proto().EmptyDict()
            .Str("w").RebuildTensor("../../etc/passwd", 2, offset: 0, size: [2], stride: [1])
            .SetItem().Stop();
        var path = WriteArchive("traversal.pth", pickle);

        var error = Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(path));

        Assert.Contains("../../etc/passwd", error.Message);
    }

    [Fact]
    public void Refuses_a_view_that_reaches_past_its_storage()
    {
        var pickle = new PickleWriter().Proto().EmptyDict()
            .Str("w").RebuildTensor("0", 4, offset: 2, size: [4], stride: [1])
            .SetItem().Stop();
        var path = WriteArchive("overrun.pth", pickle, ("0", new byte[16]));
        using var checkpoint = TensorCheckpoint.Open(path);

        var error = Assert.Throws<InvalidDataException>(() => checkpoint.Read("w"));

        Assert.Contains("'w'", error.Message);
        Assert.Contains("4-element storage", error.Message);
    }

    [Fact]
    public void Refuses_a_storage_file_of_the_wrong_size()
    {
        var pickle = new PickleWriter().Proto().EmptyDict()
            .Str("w").RebuildTensor("0", 4, offset: 0, size: [4], stride: [1])
            .SetItem().Stop();
        var path = WriteArchive("short.pth", pickle, ("0", new byte[12]));
        using var checkpoint = TensorCheckpoint.Open(path);

        var error = Assert.Throws<InvalidDataException>(() => checkpoint.Read("w"));

        Assert.Contains("holds 12 bytes, expected 16", error.Message);
    }

    [Fact]
    public void Refuses_a_truncated_pickle()
    {
        var pickle = new PickleWriter().Proto().EmptyDict().Str("w").Bytes;
        var path = WriteArchive("truncated.pth", pickle);

        var error = Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(path));

        Assert.Contains("STOP", error.Message);
    }

    [Fact]
    public void Refuses_legacy_and_unknown_files_with_a_clear_reason()
    {
        var legacy = Path.Combine(directory, "legacy.pth");
        File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        var text = Path.Combine(directory, "notes.pth");
        File.WriteAllText(text, "these are not weights");

        Assert.Contains("legacy", Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(legacy)).Message);
        Assert.Contains(text, Assert.Throws<InvalidDataException>(() => TensorCheckpoint.Open(text)).Message);
    }

    private string WriteArchive(string name, byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        var path = Path.Combine(directory, name);
        using var archive = ZipFile.Open(path, ZipArchiveMode.Create);
        Add(archive, "archive/data.pkl", pickle);
        Add(archive, "archive/byteorder", "little"u8.ToArray());
        foreach (var (key, data) in storages)
            Add(archive, $"archive/data/{key}", data);
        return path;
    }

    private static void Add(ZipArchive archive, string name, byte[] data)
    {
        using var stream = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
        stream.Write(data);
    }

    /// <summary>Emits protocol-2 pickle opcodes, as torch.save does.</summary>
    private sealed class PickleWriter
    {
        private readonly List<byte> bytes = [];

        public byte[] Bytes => bytes.ToArray();

        public PickleWriter Proto() => Op(0x80, 2);
        public PickleWriter EmptyDict() => Op((byte)'}');
        public PickleWriter EmptyTuple() => Op((byte)')');
        public PickleWriter Mark() => Op((byte)'(');
        public PickleWriter Tuple() => Op((byte)'t');
        public PickleWriter Tuple1() => Op(0x85);
        public PickleWriter Reduce() => Op((byte)'R');
        public PickleWriter SetItem() => Op((byte)'s');
        public PickleWriter SetItems() => Op((byte)'u');
        public PickleWriter False() => Op(0x89);
        public PickleWriter BinPersId() => Op((byte)'Q');
        public byte[] Stop() => Op((byte)'.').Bytes;

        public PickleWriter Global(string module, string name) =>
            Op((byte)'c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

        public PickleWriter Str(string value)
        {
            var utf8 = Encoding.UTF8.GetBytes(value);
            return Op((byte)'X').Raw(BitConverter.GetBytes((uint)utf8.Length)).Raw(utf8);
        }

        public PickleWriter Int(long value) => Op((byte)'J').Raw(BitConverter.GetBytes((int)value));

        public PickleWriter IntTuple(long[] values)
        {
            Mark();
            foreach (var value in values)
                Int(value);
            return Tuple();
        }

        // torch._utils._rebuild_tensor_v2(('storage', torch.FloatStorage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
        public PickleWriter RebuildTensor(string key, long numel, long offset, long[] size, long[] stride) =>
            Global("torch._utils", "_rebuild_tensor_v2")
                .Mark()
                .Mark().Str("storage").Global("torch", "FloatStorage").Str(key).Str("cpu").Int(numel).Tuple().BinPersId()
                .Int(offset).IntTuple(size).IntTuple(stride).False()
                .Global("collections", "OrderedDict").EmptyTuple().Reduce()
                .Tuple()
                .Reduce();

        private PickleWriter Op(params byte[] op) => Raw(op);

        private PickleWriter Raw(byte[] data)
        {
            bytes.AddRange(data);
            return this;
        }
    }
}
