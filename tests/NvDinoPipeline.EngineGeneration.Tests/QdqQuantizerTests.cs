using NvDinoPipeline.EngineGeneration.Tests.Support;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.EngineGeneration.Tests;

public sealed class QdqQuantizerTests : IDisposable
{
    private readonly TempDirectory _temp = new("nvdino-qdq");

    public void Dispose() => _temp.Dispose();

    private static CalibrationTable UniformTable(QuantizationPlan plan) => new()
    {
        Method = "minmax",
        Images = 1,
        Batches = 1,
        ModelSha256 = "00",
        Tensors = plan.ActivationTensors.ToDictionary(t => t, _ => new TensorRange(-4, 4, 4)),
    };

    [Fact]
    public void Per_channel_weights_use_each_output_channels_largest_magnitude_and_round_within_half_a_step()
    {
        // A [K=3, N=2] MatMul weight: column 0 spans ±1, column 1 spans ±0.01.
        float[] weight = [1f, 0.01f, -0.5f, -0.004f, 0.25f, 0.0071f];

        var (values, scales) = QdqQuantizer.QuantizePerChannel(weight, [3, 2], axis: 1);

        Assert.Equal([1f / 127, 0.01f / 127], scales);
        Assert.Equal([127, 127, -64, -51, 32, 90], values.Select(v => (int)v));
        for (var i = 0; i < weight.Length; i++)
        {
            Assert.InRange(Math.Abs(values[i] * scales[i % 2] - weight[i]), 0, scales[i % 2] / 2 + 1e-9);
        }
    }

    [Fact]
    public void Quantises_every_linear_layer_and_the_patch_embedding_and_keeps_norms_softmax_and_gelu_in_float()
    {
        var model = TinyVit.Build(depth: 2);
        var plan = QuantizationPlan.Create(model, new QuantizationOptions());

        var quantized = QdqQuantizer.Quantize(model, plan, UniformTable(plan));

        // Per block q, k, v, proj, fc1, fc2; plus the patch embedding Conv.
        Assert.Equal(2 * 6 + 1, plan.Nodes.Count);
        var graph = quantized.Graph!;
        var producers = graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        string? ProducerOf(string value) => producers.TryGetValue(value, out var node) ? node.OpType : null;
        foreach (var node in graph.Node.Where(n => n.OpType is "MatMul" or "Conv" && plan.Nodes.Any(p => p.Name == n.Name)))
        {
            Assert.Equal("DequantizeLinear", ProducerOf(node.Input[0]));
            Assert.Equal("DequantizeLinear", ProducerOf(node.Input[1]));
        }

        foreach (var node in graph.Node.Where(n => n.OpType is "LayerNormalization" or "Softmax" or "Erf"))
        {
            Assert.NotEqual("DequantizeLinear", ProducerOf(node.Input[0]));
        }

        // Attention's activation-by-activation products stay float by default.
        Assert.Equal(4, graph.Node.Count(n => n.OpType == "MatMul" && ProducerOf(n.Input[1]) != "DequantizeLinear"));
        Assert.Equal(plan.Nodes.Count, graph.Node.Count(n => n.OpType == "QuantizeLinear"));
        Assert.All(graph.Initializer.Where(t => t.Name!.EndsWith("_zero_point", StringComparison.Ordinal) || t.Name.Contains("_zero_point_for_")),
            t => Assert.All(t.RawData!, b => Assert.Equal(0, b)));
        Assert.DoesNotContain(graph.Initializer, t => t.Name == "blocks.0.mlp.fc1.weight_t");
        Assert.Contains(graph.Initializer, t => t.Name == "blocks.0.mlp.fc1.weight_t_quantized" && t.DataType == TensorDataType.Int8);
    }

    [Fact]
    public void Excluded_nodes_keep_their_float_weights()
    {
        var model = TinyVit.Build(depth: 2);
        var excluded = new HashSet<string>(StringComparer.Ordinal) { "/blocks.1/mlp/MatMul_1" };
        var plan = QuantizationPlan.Create(model, new QuantizationOptions { ExcludedNodes = excluded });

        var quantized = QdqQuantizer.Quantize(model, plan, UniformTable(plan));

        Assert.Equal(["/blocks.1/mlp/MatMul_1"], plan.KeptInFloat);
        var node = quantized.Graph!.Node.Single(n => n.Name == "/blocks.1/mlp/MatMul_1");
        Assert.Equal("blocks.1.mlp.fc2.weight_t", node.Input[1]);
        Assert.Contains(quantized.Graph.Initializer, t => t.Name == "blocks.1.mlp.fc2.weight_t" && t.DataType == TensorDataType.Float);
    }

    [Fact]
    public void The_qdq_model_passes_the_reference_onnx_checker_and_runs_in_onnx_runtime()
    {
        var model = TinyVit.Build(depth: 2);
        var plan = QuantizationPlan.Create(model, new QuantizationOptions { QuantizeActivationMatMuls = true });
        var path = _temp.Combine("model.int8.onnx");

        OnnxModelWriter.Save(QdqQuantizer.Quantize(model, plan, UniformTable(plan)), path);

        OnnxChecker.AssertValid(path);
        using var runner = new OnnxModelRunner(path);
        var output = runner.Run(Calibration.Images(2, 1), [2, 3, TinyVit.ImageSize, TinyVit.ImageSize]).Single(o => o.Name == "output");
        Assert.Equal([2L, TinyVit.EmbedDim], output.Shape);
        Assert.All(output.Data, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Refuses_a_calibration_table_made_for_another_model()
    {
        var model = TinyVit.Build(depth: 2);
        var plan = QuantizationPlan.Create(model, new QuantizationOptions());
        var table = UniformTable(plan) with { Tensors = new Dictionary<string, TensorRange> { ["other"] = new(0, 1, 1) } };

        var error = Assert.Throws<ArgumentException>(() => QdqQuantizer.Quantize(model, plan, table));

        Assert.Contains("made for another model", error.Message);
    }
}
