using System.Text;
using NvDinoPipeline.Model.Weights;
using static TorchSharp.torch;

namespace NvDinoPipeline.Model.Tests;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void Reads_half_bfloat16_and_integer_tensors_written_by_python()
    {
        var tensors = SafeTensors.Load(Fixture.PathOf("dtypes.safetensors"));
        try
        {
            Assert.Equal(ScalarType.Float16, tensors["f16"].dtype);
            Assert.Equal(ScalarType.BFloat16, tensors["bf16"].dtype);
            Assert.Equal(0.0, Fixture.MaxAbsDiff(tensors["f16"], tensors["f16_as_f32"]));
            Assert.Equal(0.0, Fixture.MaxAbsDiff(tensors["bf16"], tensors["bf16_as_f32"]));
            Assert.Equal([1L, -2L, 3L << 40], tensors["i64"].data<long>().ToArray());
            Assert.Equal("make_fixtures.py", SafeTensors.ReadMetadata(Fixture.PathOf("dtypes.safetensors"))["producer"]);
        }
        finally
        {
            Fixture.DisposeAll(tensors);
        }
    }

    [Fact]
    public void Round_trips_every_supported_type_and_shape()
    {
        using var scope = NewDisposeScope();
        var path = Path.Combine(directory, "round.safetensors");
        var original = new Dictionary<string, Tensor>
        {
            ["a.f32"] = randn(3, 4),
            ["b.f16"] = randn(5).to(ScalarType.Float16),
            ["c.bf16"] = randn(2, 2, 2).to(ScalarType.BFloat16),
            ["d.i64"] = arange(6, ScalarType.Int64).reshape(2, 3),
            ["e.bool"] = tensor(new[] { true, false, true }),
            ["f.empty"] = zeros(0, 4),
            ["g.transposed"] = randn(3, 5).t(),
            ["h.scalar"] = tensor(2.5f),
        };

        SafeTensors.Save(path, original, new Dictionary<string, string> { ["k"] = "v" });
        var loaded = SafeTensors.Load(path);

        Assert.Equal(original.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, value) in original)
        {
            Assert.Equal(value.dtype, loaded[name].dtype);
            Assert.True(value.equal(loaded[name]).all().item<bool>(), $"{name} changed in the round trip");
        }
        Assert.Equal(0, HeaderLength(path) % 8);
    }

    [Fact]
    public void Rejects_a_header_length_beyond_the_file()
    {
        var path = Write("long-header.safetensors", BitConverter.GetBytes(4096UL), "{}"u8.ToArray());

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("4096-byte header", error.Message);
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void Rejects_a_header_length_over_the_limit()
    {
        var path = Write("huge-header.safetensors", BitConverter.GetBytes(1UL << 40), new byte[16]);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("limit", error.Message);
    }

    [Fact]
    public void Rejects_data_offsets_outside_the_data_section()
    {
        var path = WithHeader("outside.safetensors", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", dataBytes: 8);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("'w'", error.Message);
        Assert.Contains("outside", error.Message);
    }

    [Fact]
    public void Rejects_offsets_that_disagree_with_shape_and_type()
    {
        var path = WithHeader("size.safetensors", """{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", dataBytes: 8);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("occupies 8 bytes but F32 [3] needs 12", error.Message);
    }

    [Fact]
    public void Rejects_a_header_that_is_not_json()
    {
        var path = WithHeader("garbage.safetensors", "{\"w\": [1, 2", dataBytes: 0);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("not valid JSON", error.Message);
    }

    [Fact]
    public void Rejects_an_unsupported_dtype_naming_it()
    {
        var path = WithHeader("f8.safetensors", """{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", dataBytes: 2);

        var error = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));

        Assert.Contains("F8_E4M3", error.Message);
    }

    [Fact]
    public void Rejects_duplicate_names_when_saving()
    {
        using var a = zeros(1);
        var error = Assert.Throws<ArgumentException>(() => SafeTensors.Save(
            Path.Combine(directory, "dup.safetensors"), [new("x", a), new("x", a)]));

        Assert.Contains("'x'", error.Message);
    }

    private static long HeaderLength(string path)
    {
        using var stream = File.OpenRead(path);
        var buffer = new byte[8];
        stream.ReadExactly(buffer);
        return (long)BitConverter.ToUInt64(buffer);
    }

    private string WithHeader(string name, string json, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(json);
        return Write(name, BitConverter.GetBytes((ulong)header.Length), header, new byte[dataBytes]);
    }

    private string Write(string name, params byte[][] parts)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllBytes(path, parts.SelectMany(p => p).ToArray());
        return path;
    }
}
