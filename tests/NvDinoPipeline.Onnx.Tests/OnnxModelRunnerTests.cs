using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Onnx.Tests.Support;
using Xunit.Abstractions;

namespace NvDinoPipeline.Onnx.Tests;

public sealed class OnnxModelRunnerTests(ITestOutputHelper log) : IDisposable
{
    private readonly TempFolder _folder = new();

    [Fact]
    public void Runs_a_hand_built_graph_and_returns_outputs_in_declared_order()
    {
        var path = SaveAddOne(unusedInitializer: false);

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);
        var outputs = runner.Run([1f, 2f, 3f, 4f, 5f, 6f], [2, 3]);

        Assert.Equal(["y", "sum"], outputs.Select(o => o.Name));
        Assert.Equal([2f, 3f, 4f, 5f, 6f, 7f], outputs[0].Data);
        Assert.Equal([2L, 3L], outputs[0].Shape);
        Assert.Equal([27f], outputs[1].Data);
        Assert.Empty(runner.CreationWarnings!);
    }

    [Fact]
    public void Reports_what_onnx_runtime_warned_about_while_creating_the_session()
    {
        var path = SaveAddOne(unusedInitializer: true);

        using var runner = new OnnxModelRunner(path, intraOpThreads: 1);

        Assert.Contains(runner.CreationWarnings!, w => w.Contains("never_used", StringComparison.Ordinal));
        log.WriteLine(string.Join(Environment.NewLine, runner.CreationWarnings!));
    }

    [Fact]
    public void Rejects_an_input_whose_length_does_not_match_its_shape()
    {
        using var runner = new OnnxModelRunner(SaveAddOne(unusedInitializer: false), intraOpThreads: 1);

        var error = Assert.Throws<ArgumentException>(() => runner.Run([1f, 2f, 3f], [2, 3]));
        Assert.Contains("Input 'x' has 3 values but shape [2, 3] holds 6", error.Message);
    }

    [Fact]
    public void Names_the_missing_model_file()
    {
        var path = _folder.File("absent.onnx");

        var error = Assert.Throws<FileNotFoundException>(() => new OnnxModelRunner(path));
        Assert.Contains(path, error.Message);
    }

    public void Dispose() => _folder.Dispose();

    private string SaveAddOne(bool unusedInitializer)
    {
        var b = new OnnxGraphBuilder("add_one");
        var x = b.AddInput("x", TensorDataType.Float, ["n", 3]);
        b.AddNode("Add", [x, b.FloatScalar(1f)], output: "y");
        b.AddNode("ReduceSum", ["y"], [OnnxAttribute.Int("keepdims", 0)], output: "sum");
        b.AddOutput("y", TensorDataType.Float, ["n", 3]);
        b.AddOutput("sum", TensorDataType.Float, []);
        if (unusedInitializer)
        {
            b.AddInitializer("never_used", [1f, 2f], [2]);
        }

        var path = _folder.File(unusedInitializer ? "unused.onnx" : "add_one.onnx");
        OnnxModelWriter.Save(b.ToModel(17, "tests", "1"), path);
        return path;
    }
}
