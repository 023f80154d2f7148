using NvDinoPipeline.EngineGeneration.Tests.Support;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.EngineGeneration.Tests;

/// <summary>Calibration with ONNX Runtime and the Q/DQ model's embeddings on held-out images, on a small random ViT.</summary>
public sealed class Int8FidelityTests : IDisposable
{
    private readonly TempDirectory _temp = new("nvdino-int8");

    public void Dispose() => _temp.Dispose();

    private (string Fp32, QuantizationPlan Plan, Onnx.Proto.ModelProto Model) Export()
    {
        var model = TinyVit.Build();
        var path = _temp.Combine("model.onnx");
        OnnxModelWriter.Save(model, path);
        return (path, QuantizationPlan.Create(model, new QuantizationOptions()), model);
    }

    private FidelityReport HeldOutFidelity(string fp32, Onnx.Proto.ModelProto model, QuantizationPlan plan, CalibrationTable table)
    {
        var int8 = _temp.Combine($"model.int8.{Guid.NewGuid():N}.onnx");
        OnnxModelWriter.Save(QdqQuantizer.Quantize(model, plan, table), int8);
        // Seeds 500+ were never calibrated on.
        var images = Calibration.Images(16, firstSeed: 500);
        long[] shape = [16, 3, TinyVit.ImageSize, TinyVit.ImageSize];
        using var reference = new OnnxModelRunner(fp32);
        using var quantized = new OnnxModelRunner(int8);
        return EmbeddingFidelity.Compare(
            reference.Run(images, shape).Single(o => o.Name == "output").Data,
            quantized.Run(images, shape).Single(o => o.Name == "output").Data,
            TinyVit.EmbedDim);
    }

    [Theory]
    [InlineData(CalibrationMethod.MinMax)]
    [InlineData(CalibrationMethod.Percentile)]
    [InlineData(CalibrationMethod.Entropy)]
    public void Int8_embeddings_of_held_out_images_follow_fp32_with_mean_cosine_of_at_least_0_99(CalibrationMethod method)
    {
        var (fp32, plan, model) = Export();

        var table = ActivationCalibrator.Calibrate(fp32, plan, Calibration.Batches(3, 8), new CalibrationSettings { Method = method }, _temp.Combine("work"));

        var fidelity = HeldOutFidelity(fp32, model, plan, table);
        Assert.True(fidelity.MeanCosine >= 0.99, $"{method}: {fidelity}");
        Assert.Equal(16, fidelity.Rows);
    }

    [Fact]
    public void Records_every_quantised_activation_and_how_it_was_calibrated()
    {
        var (fp32, plan, _) = Export();

        var table = ActivationCalibrator.Calibrate(fp32, plan, Calibration.Batches(2, 4),
            new CalibrationSettings { Method = CalibrationMethod.Percentile, Percentile = 99.9 }, _temp.Combine("work"));

        Assert.Equal(plan.ActivationTensors.Order(), table.Tensors.Keys.Order());
        Assert.Equal(("percentile", 99.9, 8, 2), (table.Method, table.Percentile!.Value, table.Images, table.Batches));
        Assert.Equal(ActivationCalibrator.Sha256Of(fp32), table.ModelSha256);
        Assert.All(table.Tensors.Values, r =>
        {
            Assert.True(r.Min <= r.Max);
            Assert.InRange(r.Amax, 1e-6, Math.Max(Math.Abs(r.Min), Math.Abs(r.Max)) + 1e-9);
        });
        Assert.Empty(Directory.GetFiles(_temp.Combine("work")));

        var copy = CalibrationTable.FromJson(table.ToJson(), "calibration.json");
        Assert.Equal(table.Tensors.Count, copy.Tensors.Count);
        Assert.Equal(table.Tensors.First().Value, copy.Tensors[table.Tensors.First().Key]);
    }

    [Fact]
    public void Fetching_activations_over_several_runs_gives_the_same_ranges()
    {
        var (fp32, plan, _) = Export();
        var batches = Calibration.Batches(2, 4);

        var once = ActivationCalibrator.Calibrate(fp32, plan, batches, new CalibrationSettings { Method = CalibrationMethod.MinMax }, _temp.Combine("a"));
        var split = ActivationCalibrator.Calibrate(fp32, plan, batches,
            new CalibrationSettings { Method = CalibrationMethod.MinMax, MemoryBudgetBytes = 1 }, _temp.Combine("b"));

        Assert.Equal(once.Tensors, split.Tensors);
    }

    [Fact]
    public void A_clipping_range_far_too_narrow_shows_in_the_figures()
    {
        var (fp32, plan, model) = Export();
        var table = ActivationCalibrator.Calibrate(fp32, plan, Calibration.Batches(2, 8),
            new CalibrationSettings { Method = CalibrationMethod.Percentile, Percentile = 20 }, _temp.Combine("work"));

        var fidelity = HeldOutFidelity(fp32, model, plan, table);

        Assert.True(fidelity.MeanCosine < 0.99, fidelity.ToString());
    }

    [Fact]
    public void Rejects_a_calibration_cache_of_another_format()
    {
        var error = Assert.Throws<InvalidDataException>(() =>
            CalibrationTable.FromJson("""{ "format": "trt-8601-entropy", "method": "entropy", "images": 1, "batches": 1, "model_sha256": "", "tensors": {} }""", "cache.json"));

        Assert.Contains("cache.json", error.Message);
        Assert.Contains("nvdino.calibration/1", error.Message);
    }
}
