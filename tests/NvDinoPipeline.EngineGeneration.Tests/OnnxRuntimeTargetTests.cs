using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.Tests.Support;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration.Tests;

/// <summary>The runner end to end on the <c>onnxruntime</c> target, against a file artifact store.</summary>
public sealed class OnnxRuntimeTargetTests
{
    [Fact]
    public async Task Fp32_publishes_an_optimised_model_that_reproduces_the_export_with_its_metadata_and_report()
    {
        using var bed = await EngineTestBed.CreateAsync();
        await bed.StageImagesAsync(10);
        var command = bed.Command();

        var result = await bed.RunAsync(command);

        var done = result.Completed;
        Assert.Equal(("onnxruntime", "fp32", 1, 8, 16), (done.Target, done.Precision, done.MinBatchSize, done.OptBatchSize, done.MaxBatchSize));
        Assert.Equal(command.OutputUri.Append("model.ort.onnx"), done.ArtifactUri);
        Assert.Equal(command.OutputUri.Append("model.json"), done.ModelMetadataUri);
        Assert.Equal((command.PipelineId, command.JobId), (done.PipelineId, done.JobId));

        var metadata = ModelMetadata.FromJson(await bed.ReadTextAsync(done.ModelMetadataUri), "model.json");
        Assert.Equal("model.ort.onnx", metadata.OnnxFile);
        var preprocessing = TinyVit.Metadata().Preprocessing;
        Assert.Equal((preprocessing.Height, preprocessing.Width), (metadata.Preprocessing.Height, metadata.Preprocessing.Width));
        Assert.Equal(preprocessing.Mean, metadata.Preprocessing.Mean);
        Assert.Equal(TinyVit.Metadata().Backbone, metadata.Backbone);

        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.True(manifest.Accepted);
        Assert.Equal("extended", manifest.OnnxRuntime!.OptimizationLevel);
        Assert.Equal(ActivationCalibrator.Sha256Of(EngineTestBed.LocalPath(bed.ModelUri)), manifest.Source.OnnxSha256);
        Assert.Null(manifest.Calibration);
        Assert.Equal(10, manifest.Fidelity.ImageCount);
        Assert.True(manifest.Fidelity.MinCosine > 0.99999, manifest.Fidelity.ToString());

        var images = Enumerable.Range(0, 3).Select(i => TestImages.Shapes(40, 36, 1000 + i)).ToList();
        var expected = bed.ReferenceEmbeddings(images, 40, 36);
        using var artifact = new OnnxModelRunner(EngineTestBed.LocalPath(done.ArtifactUri));
        var preprocessor = new ImagePreprocessor(metadata.Preprocessing);
        var input = new float[3 * preprocessor.ImageSize];
        for (var i = 0; i < 3; i++)
        {
            preprocessor.Preprocess(images[i], 40, 36, input.AsSpan(i * preprocessor.ImageSize, preprocessor.ImageSize));
        }

        var actual = artifact.Run(input, [3, 3, 32, 32]).Single(o => o.Name == "output").Data;
        Assert.True(OnnxParity.Compare(expected, actual, TinyVit.EmbedDim).IsWithin(1e-4, 0.99999));
        Assert.Contains(bed.Progress, p => p.Message?.Contains("optimising", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Int8_calibrates_on_the_staged_dataset_and_checks_held_out_images()
    {
        using var bed = await EngineTestBed.CreateAsync();
        await bed.StageImagesAsync(40);
        var command = bed.Command(
            "gen_trt_engine.tensorrt.data_type=int8",
            "gen_trt_engine.tensorrt.calibration.cal_batch_size=4",
            "gen_trt_engine.tensorrt.calibration.cal_batches=6",
            "gen_trt_engine.tensorrt.calibration.method=entropy");

        var result = await bed.RunAsync(command);

        Assert.Equal("int8", result.Completed.Precision);
        var manifest = await bed.ManifestAsync(command.OutputUri);
        var calibration = manifest.Calibration!;
        Assert.Equal(("entropy", 24, 6, false), (calibration.Method, calibration.Images, calibration.Batches, calibration.FromCache));
        Assert.Equal(3 * 6 + 1, calibration.QuantizedNodes);
        Assert.True(manifest.Fidelity.HeldOut);
        Assert.Equal(12, manifest.Fidelity.ImageCount);
        Assert.Equal("mean_cosine", manifest.Fidelity.Bound);
        Assert.True(manifest.Fidelity.MeanCosine >= 0.99, manifest.Fidelity.ToString());
        Assert.Equal(manifest.Fidelity.MeanCosine, result.Metrics["mean_cosine"]);

        var table = CalibrationTable.FromJson(await bed.ReadTextAsync(result.Artifacts["calibration_cache"]), "calibration.json");
        Assert.Equal(manifest.Source.OnnxSha256, table.ModelSha256);
        var qdq = OnnxModelReader.Load(EngineTestBed.LocalPath(result.Artifacts["qdq_model"]));
        Assert.Equal(calibration.QuantizedNodes, qdq.Graph!.Node.Count(n => n.OpType == "QuantizeLinear"));
        var optimised = OnnxModelReader.Load(EngineTestBed.LocalPath(result.Completed.ArtifactUri));
        Assert.Contains(optimised.Graph!.Node, n => n.OpType == "MatMulIntegerToFloat");
    }

    [Fact]
    public async Task Int8_of_a_model_exported_with_a_fixed_batch_calibrates_and_checks_in_full_batches()
    {
        using var bed = await EngineTestBed.CreateAsync(TinyVit.Build(batchSize: 3), TinyVit.Metadata(batchSize: 3));
        await bed.StageImagesAsync(25);
        var command = bed.Command("gen_trt_engine.tensorrt.data_type=int8", "gen_trt_engine.tensorrt.calibration.cal_batches=2");

        var result = await bed.RunAsync(command);

        Assert.Equal((3, 3, 3), (result.Completed.MinBatchSize, result.Completed.OptBatchSize, result.Completed.MaxBatchSize));
        var manifest = await bed.ManifestAsync(command.OutputUri);
        // 16 images (cal_batch_size 8 x 2) in batches of the model's 3, the last one filled up by repeating images.
        Assert.Equal(18, manifest.Calibration!.Images);
        Assert.Equal(6, manifest.Calibration.Batches);
        Assert.Equal(5, manifest.Fidelity.ImageCount);
        Assert.True(manifest.Fidelity.Passed, manifest.Fidelity.ToString());
    }

    [Fact]
    public async Task Int8_reuses_the_calibration_cache_of_an_earlier_job_instead_of_calibrating_again()
    {
        using var bed = await EngineTestBed.CreateAsync();
        await bed.StageImagesAsync(30);
        string[] spec = ["gen_trt_engine.tensorrt.data_type=int8", "gen_trt_engine.tensorrt.calibration.cal_batches=2"];
        var first = await bed.RunAsync(bed.Command(spec));
        var cache = first.Artifacts["calibration_cache"];
        var before = await bed.ReadTextAsync(cache);
        bed.Progress.Clear();

        var second = bed.Command([.. spec, $"gen_trt_engine.tensorrt.calibration.cal_cache_file={cache}"]);
        var reused = await bed.RunAsync(second);

        var manifest = await bed.ManifestAsync(second.OutputUri);
        Assert.True(manifest.Calibration!.FromCache);
        Assert.Equal(cache.AbsoluteUri, manifest.Calibration.CacheUri);
        Assert.Equal(second.OutputUri.Append("calibration.json").AbsoluteUri, reused.Artifacts["calibration_cache"].AbsoluteUri);
        Assert.Equal(before, await bed.ReadTextAsync(reused.Artifacts["calibration_cache"]));
        Assert.Equal(before, await bed.ReadTextAsync(cache));
        Assert.DoesNotContain(bed.Progress, p => p.Message?.StartsWith("calibrating", StringComparison.Ordinal) == true);
        Assert.Contains(bed.Progress, p => p.Message?.StartsWith("writing Q/DQ", StringComparison.Ordinal) == true);
    }

    /// <summary>An int8 job whose spec's calibration clips far too much (the 20th percentile): its own ranges miss the bound.</summary>
    private static readonly string[] TooNarrowPercentile =
    [
        "gen_trt_engine.tensorrt.data_type=int8",
        "gen_trt_engine.tensorrt.calibration.method=percentile",
        "gen_trt_engine.tensorrt.calibration.percentile=20",
        "gen_trt_engine.tensorrt.calibration.cal_batches=2",
    ];

    [Fact]
    public async Task Int8_whose_calibration_method_misses_the_bound_keeps_another_methods_ranges_from_the_same_run()
    {
        using var bed = await EngineTestBed.CreateAsync();
        await bed.StageImagesAsync(30);
        var command = bed.Command(TooNarrowPercentile);

        var result = await bed.RunAsync(command);

        var manifest = await bed.ManifestAsync(command.OutputUri);
        var calibration = manifest.Calibration!;
        Assert.True(manifest.Accepted);
        Assert.Equal("percentile", calibration.RequestedMethod);
        Assert.NotEqual("percentile", calibration.Method);
        Assert.Equal(("percentile", 20.0, false), (calibration.Attempts[0].Method, calibration.Attempts[0].Percentile, calibration.Attempts[0].Passed));
        Assert.True(calibration.Attempts[0].MeanCosine < 0.99);
        Assert.Equal((calibration.Method, true), (calibration.Attempts[^1].Method, calibration.Attempts[^1].Passed));
        Assert.All(calibration.Attempts.SkipLast(1), a => Assert.False(a.Passed));
        Assert.True(manifest.Fidelity.MeanCosine >= 0.99, manifest.Fidelity.ToString());
        Assert.Equal(16, calibration.Images);
        Assert.Contains(bed.Progress, p => p.Message?.Contains("trying " + calibration.Method, StringComparison.Ordinal) == true);

        // The published cache and Q/DQ model are the kept method's ranges, not the spec's.
        var table = CalibrationTable.FromJson(await bed.ReadTextAsync(result.Artifacts["calibration_cache"]), "calibration.json");
        Assert.Equal(calibration.Method, table.Method);
        var model = OnnxModelReader.Load(EngineTestBed.LocalPath(bed.ModelUri));
        var expected = bed.Temp.Combine("expected.int8.onnx");
        OnnxModelWriter.Save(QdqQuantizer.Quantize(model, QuantizationPlan.Create(model, new QuantizationOptions()), table), expected);
        Assert.Equal(await File.ReadAllBytesAsync(expected), await File.ReadAllBytesAsync(EngineTestBed.LocalPath(result.Artifacts["qdq_model"])));
    }

    [Fact]
    public async Task Int8_fails_naming_every_method_tried_when_none_reaches_the_bound()
    {
        using var bed = await EngineTestBed.CreateAsync();
        bed.Options.MinMeanCosineInt8 = 1.0;
        await bed.StageImagesAsync(30);
        var command = bed.Command("gen_trt_engine.tensorrt.data_type=int8", "gen_trt_engine.tensorrt.calibration.cal_batches=2");

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(command));

        Assert.Contains("none passed: entropy mean cosine", error.Message);
        Assert.Contains("percentile mean cosine", error.Message);
        Assert.Contains("minmax mean cosine", error.Message);
        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.False(manifest.Accepted);
        Assert.Equal(["entropy", "percentile", "minmax"], manifest.Calibration!.Attempts.Select(a => a.Method));
        Assert.Equal("entropy", manifest.Calibration.Method);
        Assert.Null(manifest.Calibration.RequestedMethod);
    }

    [Fact]
    public async Task Int8_that_misses_the_fidelity_bound_fails_with_the_figures_and_leaves_its_report()
    {
        using var bed = await EngineTestBed.CreateAsync();
        bed.Options.CalibrationFallback = false;
        await bed.StageImagesAsync(30);
        var command = bed.Command(TooNarrowPercentile);

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(command));

        Assert.Contains("mean cosine", error.Message);
        Assert.Contains("< 0.99", error.Message);
        Assert.Contains("held-out", error.Message);
        Assert.Contains("calibration.method", error.Message);
        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.False(manifest.Accepted);
        Assert.False(manifest.Fidelity.Passed);
        Assert.True(manifest.Fidelity.MeanCosine < 0.99);
        Assert.Null(await bed.Store.GetInfoAsync(command.OutputUri.Append("model.ort.onnx"), CancellationToken.None));
        Assert.Null(await bed.Store.GetInfoAsync(command.OutputUri.Append("model.json"), CancellationToken.None));
    }

    [Fact]
    public async Task Int8_without_any_images_fails_saying_what_would_provide_them()
    {
        using var bed = await EngineTestBed.CreateAsync();

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command("gen_trt_engine.tensorrt.data_type=int8")));

        Assert.Contains("int8 needs calibration images", error.Message);
        Assert.Contains("cal_image_dir", error.Message);
    }

    [Fact]
    public async Task Calibrates_on_a_folder_of_image_files_named_by_cal_image_dir()
    {
        using var bed = await EngineTestBed.CreateAsync();
        var folder = bed.Temp.Combine("calibration-pngs");
        Directory.CreateDirectory(folder);
        for (var i = 0; i < 20; i++)
        {
            await File.WriteAllBytesAsync(Path.Combine(folder, $"{i:D2}.bmp"), Bmp(TestImages.Shapes(24, 20, 2000 + i), 24, 20));
        }

        var command = bed.Command("gen_trt_engine.tensorrt.data_type=int8", "gen_trt_engine.tensorrt.calibration.cal_batches=2",
            $"gen_trt_engine.tensorrt.calibration.cal_image_dir=[\"{folder}\"]");
        await bed.RunAsync(command);

        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.Contains("20 image files", manifest.Calibration!.Source);
        Assert.Equal(16, manifest.Calibration.Images);
    }

    [Fact]
    public async Task Without_a_dataset_an_fp32_artifact_is_checked_on_generated_images()
    {
        using var bed = await EngineTestBed.CreateAsync();
        var command = bed.Command();

        await bed.RunAsync(command);

        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.Contains("generated", manifest.Fidelity.Images);
        Assert.Equal(bed.Options.VerificationImages, manifest.Fidelity.ImageCount);
    }

    [Theory]
    [InlineData("gen_trt_engine.tensorrt.layers_precision=[\"/blocks.0/attn/Softmx:fp32\"]", "did you mean '/blocks.0/attn/Softmax'")]
    public async Task A_spec_it_cannot_honour_fails_the_job_naming_the_key(string setting, string expected)
    {
        using var bed = await EngineTestBed.CreateAsync();

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command(setting)));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task A_model_file_that_is_not_onnx_fails_naming_it()
    {
        using var bed = await EngineTestBed.CreateAsync();
        await bed.PutTextAsync(bed.ModelUri, "this is not a protobuf model");

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command()));

        Assert.Contains(bed.ModelUri.ToString(), error.Message);
    }

    /// <summary>An uncompressed 24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes).</summary>
    private static byte[] Bmp(byte[] rgb, int width, int height)
    {
        var stride = (width * 3 + 3) / 4 * 4;
        var bytes = new byte[54 + stride * height];
        void Int(int offset, int value) => BitConverter.TryWriteBytes(bytes.AsSpan(offset), value);
        bytes[0] = (byte)'B';
        bytes[1] = (byte)'M';
        Int(2, bytes.Length);
        Int(10, 54);
        Int(14, 40);
        Int(18, width);
        Int(22, height);
        BitConverter.TryWriteBytes(bytes.AsSpan(26), (short)1);
        BitConverter.TryWriteBytes(bytes.AsSpan(28), (short)24);
        for (var y = 0; y < height; y++)
        {
            for (var x = 0; x < width; x++)
            {
                var source = (y * width + x) * 3;
                var target = 54 + (height - 1 - y) * stride + x * 3;
                bytes[target] = rgb[source + 2];
                bytes[target + 1] = rgb[source + 1];
                bytes[target + 2] = rgb[source];
            }
        }

        return bytes;
    }
}
