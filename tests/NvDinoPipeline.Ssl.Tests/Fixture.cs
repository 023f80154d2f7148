using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace NvDinoPipeline.Ssl.Tests;

/// <summary>Reference numbers written by Fixtures/make_fixtures.py (PyTorch 1.13, torchvision 0.14).</summary>
internal static class Fixture
{
    public static JsonElement Load(string file)
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Fixtures", file);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }

    public static long[] Shape(JsonElement tensor) =>
        tensor.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    public static Tensor ToTensor(JsonElement tensor)
    {
        var shape = Shape(tensor);
        var data = tensor.GetProperty("data");
        if (data.GetArrayLength() > 0 && data[0].ValueKind is JsonValueKind.True or JsonValueKind.False)
            return torch.tensor(data.EnumerateArray().Select(e => e.GetBoolean()).ToArray()).view(shape);
        return torch.tensor(data.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray()).view(shape);
    }

    public static double Number(JsonElement parent, string name) => parent.GetProperty(name).GetDouble();

    public static void AssertClose(JsonElement expected, Tensor actual, double tolerance = 1e-5)
    {
        var shape = Shape(expected);
        Assert.Equal(shape, actual.shape);
        var want = expected.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var got = actual.detach().to(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        for (var i = 0; i < want.Length; i++)
        {
            var scale = Math.Max(1.0, Math.Abs(want[i]));
            Assert.True(Math.Abs(want[i] - got[i]) <= tolerance * scale, $"element {i}: expected {want[i]}, got {got[i]}");
        }
    }

    public static void AssertClose(double expected, Tensor actual, double tolerance = 1e-5)
    {
        var got = actual.detach().to(ScalarType.Float64).cpu().item<double>();
        Assert.True(Math.Abs(expected - got) <= tolerance * Math.Max(1.0, Math.Abs(expected)), $"expected {expected}, got {got}");
    }
}

internal static class TensorAssertions
{
    /// <summary>Same shape and bit-identical values.</summary>
    public static bool SameAs(this Tensor a, Tensor b) =>
        a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
