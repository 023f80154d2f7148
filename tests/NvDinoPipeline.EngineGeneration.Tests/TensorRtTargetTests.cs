using System.Security.Cryptography;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.Tests.Support;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.EpContext;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Storage;
using NvDinoPipeline.Testing;

namespace NvDinoPipeline.EngineGeneration.Tests;

/// <summary>
/// The <c>tensorrt</c> target with a stand-in trtexec (a shell script written by each test): the command lines the
/// runner builds, what it records from the log, how it checks the engine's outputs, and each failure mode.
/// No real TensorRT runs here.
/// </summary>
public sealed class TensorRtTargetTests
{
    private const int Width = 40;
    private const int Height = 36;

    /// <summary>A bed whose dataset is one picture repeated, so a single reference embedding fits every verified image.</summary>
    private static async Task<(EngineTestBed Bed, float[] Embedding)> SamePictureBedAsync(int images = 16, int exportBatch = -1)
    {
        var bed = await EngineTestBed.CreateAsync(TinyVit.Build(batchSize: exportBatch), TinyVit.Metadata(batchSize: exportBatch));
        var picture = TestImages.Shapes(Width, Height, seed: 42);
        await bed.StageImagesAsync(images, Width, Height, _ => picture);
        return (bed, bed.ReferenceEmbeddings([picture], Width, Height, exportBatch));
    }

    private static FakeTrtexec Install(EngineTestBed bed, TrtexecBehaviour behaviour, float[]? embedding = null, int fixedBatch = 1)
    {
        var fake = FakeTrtexec.Create(bed.Temp.Combine("tensorrt", "bin"), behaviour, embedding, fixedBatch);
        bed.Options.TrtexecPath = fake.Path;
        return fake;
    }

    [Fact]
    public async Task Without_trtexec_fails_at_once_naming_what_was_looked_for()
    {
        using var bed = await EngineTestBed.CreateAsync();
        bed.Options.TrtexecSearchDirectories = [bed.Temp.Combine("no-tensorrt")];
        var command = bed.Command("pipeline.deploy.target=tensorrt") with { ModelMetadataUri = bed.ExportFolder.Append("missing.json") };

        var error = await Assert.ThrowsAsync<StageUnavailableException>(() => bed.RunAsync(command));

        Assert.Contains("trtexec", error.Message);
        Assert.Contains(bed.Temp.Combine("no-tensorrt", "trtexec"), error.Message);
        Assert.Contains("pipeline.deploy.target=onnxruntime", error.Message);
        Assert.Empty(bed.Progress);
    }

    [Fact]
    public async Task Fp16_builds_with_the_profile_checks_the_engine_and_records_tensorrt_and_the_gpu()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.tensorrt.data_type=fp16",
            "gen_trt_engine.tensorrt.min_batch_size=2", "gen_trt_engine.tensorrt.opt_batch_size=4", "gen_trt_engine.tensorrt.max_batch_size=8",
            "gen_trt_engine.tensorrt.workspace_size=512");

        var result = await bed.RunAsync(command);

        var done = result.Completed;
        Assert.Equal(("tensorrt", "fp16", 2, 4, 8), (done.Target, done.Precision, done.MinBatchSize, done.OptBatchSize, done.MaxBatchSize));
        Assert.Equal(command.OutputUri.Append("model.engine"), done.ArtifactUri);
        Assert.Equal("serialized engine\n", await bed.ReadTextAsync(done.ArtifactUri));

        Assert.Equal(2, fake.Runs.Count);
        var build = fake.Runs[0].Split(' ');
        Assert.Contains("--fp16", build);
        Assert.Contains("--memPoolSize=workspace:512", build);
        Assert.Contains("--minShapes=input:2x3x32x32", build);
        Assert.Contains("--optShapes=input:4x3x32x32", build);
        Assert.Contains("--maxShapes=input:8x3x32x32", build);
        Assert.Contains(build, a => a.StartsWith("--timingCacheFile=", StringComparison.Ordinal));
        Assert.Contains(build, a => a.StartsWith("--onnx=", StringComparison.Ordinal) && a.EndsWith("model.onnx", StringComparison.Ordinal));
        var verify = fake.Runs[1].Split(' ');
        Assert.Contains("--shapes=input:8x3x32x32", verify);
        Assert.Contains(verify, a => a.StartsWith("--loadEngine=", StringComparison.Ordinal));

        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.Equal(("10.3.0", "NVIDIA A100-SXM4-40GB", "8.0"), (manifest.TensorRt!.Version, manifest.TensorRt.Gpu, manifest.TensorRt.ComputeCapability));
        Assert.Equal(fake.Path, manifest.TensorRt.Trtexec);
        Assert.Equal(8, manifest.Fidelity.ImageCount);
        Assert.True(manifest.Fidelity.MinCosine > 0.9999, manifest.Fidelity.ToString());
        Assert.Contains("--verbose", (await bed.ReadTextAsync(command.OutputUri.Append("trtexec_build.log"))).Split(' ', '\n'));

        // model.json names the EP-context model, through which ONNX Runtime's TensorRT provider loads this very engine.
        var metadata = ModelMetadata.FromJson(await bed.ReadTextAsync(done.ModelMetadataUri), "model.json");
        Assert.Equal("model_ctx.onnx", metadata.OnnxFile);
        var contextPath = command.OutputUri.Append("model_ctx.onnx").LocalPath;
        OnnxChecker.AssertValid(contextPath);
        var context = EpContextModel.Read(OnnxModelReader.Load(contextPath), contextPath)!;
        var engine = await bed.Store.GetInfoAsync(done.ArtifactUri, CancellationToken.None);
        Assert.Equal(new TensorRtEngineContext
        {
            EngineFile = "model.engine",
            EngineSha256 = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(done.ArtifactUri.LocalPath))),
            SourceOnnxFile = "model.onnx",
            TensorRtVersion = "10.3.0",
            Gpu = "NVIDIA A100-SXM4-40GB",
            ComputeCapability = "8.0",
            Precision = "fp16",
        }, context);
        Assert.Equal(engine!.Sha256, context.EngineSha256);
        Assert.Equal((context.EngineSha256, command.OutputUri.Append("model_ctx.onnx").AbsoluteUri), (manifest.TensorRt.EngineSha256, manifest.TensorRt.EpContextModelUri));
        // The ONNX model it was built from travels with it, for inference asked to run without TensorRT.
        Assert.NotNull(await bed.Store.GetInfoAsync(command.OutputUri.Append("model.onnx"), CancellationToken.None));
    }

    [Fact]
    public async Task Fp16_keeps_every_layernorm_and_softmax_in_fp32_when_the_spec_lists_no_layers()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.tensorrt.data_type=fp16");

        await bed.RunAsync(command);

        var expected = TinyVit.Build().Graph!.Node.Where(n => n.OpType is "LayerNormalization" or "Softmax").Select(n => $"{n.Name}:fp32").ToList();
        Assert.Equal(3 * 3 + 1, expected.Count); // 3 blocks of 2 LayerNorms and a Softmax, and the final norm
        var build = fake.Runs[0].Split(' ');
        Assert.Equal(expected, build.Single(a => a.StartsWith("--layerPrecisions=", StringComparison.Ordinal))["--layerPrecisions=".Length..].Split(','));
        Assert.Contains("--precisionConstraints=obey", build);
        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.True(manifest.TensorRt!.LayersPrecisionDefault);
        Assert.Equal(expected, manifest.TensorRt.LayersPrecision);
    }

    [Fact]
    public async Task Fp32_gets_no_layer_constraints_by_default()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding);

        await bed.RunAsync(bed.Command("pipeline.deploy.target=tensorrt"));

        Assert.DoesNotContain(fake.Runs[0].Split(' '), a => a.StartsWith("--layerPrecisions", StringComparison.Ordinal) || a.StartsWith("--precisionConstraints", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_engine_named_by_trt_engine_is_the_one_the_ep_context_model_names()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.trt_engine=a100 vit.plan");
        var elsewhere = command.OutputUri.Append("a100 vit.plan");

        var result = await bed.RunAsync(command);

        Assert.Equal(elsewhere, result.Completed.ArtifactUri);
        var contextPath = command.OutputUri.Append("model_ctx.onnx").LocalPath;
        var context = EpContextModel.Read(OnnxModelReader.Load(contextPath), contextPath)!;
        Assert.Equal("a100 vit.plan", context.EngineFile);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(elsewhere.LocalPath))), context.EngineSha256);
    }

    [Fact]
    public async Task Onnx_runtime_reads_the_ep_context_model_and_only_lacks_the_tensorrt_provider_to_run_it()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt");

        await bed.RunAsync(command);

        // ONNX Runtime loads the graph, checks the node against its EPContext schema and reads which provider the
        // context is for; the CPU build then has none to give it to (GPU builds hand it to the TensorRT provider).
        var error = Assert.Throws<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(() =>
            new Microsoft.ML.OnnxRuntime.InferenceSession(command.OutputUri.Append("model_ctx.onnx").LocalPath).Dispose());
        Assert.Contains("EPContext node generated by 'TensorrtExecutionProvider' is not compatible with any execution provider added to the session", error.Message);
    }

    [Fact]
    public async Task A_trtexec_that_does_not_report_its_tensorrt_and_gpu_fails_the_job_saying_so()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        Install(bed, TrtexecBehaviour.SilentAboutHost, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt");

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(command));

        Assert.Contains("does not say which TensorRT and GPU built the engine", error.Message);
        Assert.Contains(command.OutputUri.Append("trtexec_build.log").ToString(), error.Message);
        Assert.Null(await bed.Store.GetInfoAsync(command.OutputUri.Append("model.engine"), CancellationToken.None));
    }

    [Fact]
    public async Task A_model_exported_with_a_fixed_batch_builds_without_a_profile_and_reports_that_batch()
    {
        var (bed, embedding) = await SamePictureBedAsync(exportBatch: 2);
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding, fixedBatch: 2);

        var result = await bed.RunAsync(bed.Command("pipeline.deploy.target=tensorrt"));

        Assert.Equal((2, 2, 2), (result.Completed.MinBatchSize, result.Completed.OptBatchSize, result.Completed.MaxBatchSize));
        Assert.DoesNotContain(fake.Runs[0].Split(' '), a => a.Contains("Shapes=", StringComparison.Ordinal));
        Assert.DoesNotContain(fake.Runs[1].Split(' '), a => a.StartsWith("--shapes=", StringComparison.Ordinal));
        Assert.Equal(2, result.Metrics["verification_images"]);
    }

    [Fact]
    public async Task A_fixed_batch_size_other_than_the_models_fails_naming_both()
    {
        var (bed, _) = await SamePictureBedAsync(exportBatch: 2);
        using var __ = bed;
        Install(bed, TrtexecBehaviour.Succeeds);

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.batch_size=4", "inference.batch_size=4")));

        Assert.Contains("gen_trt_engine.batch_size is 4", error.Message);
        Assert.Contains("fixed batch of 2", error.Message);
    }

    [Fact]
    public async Task Int8_builds_from_the_qdq_model_with_explicit_quantisation()
    {
        var (bed, embedding) = await SamePictureBedAsync(images: 30);
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.tensorrt.data_type=int8",
            "gen_trt_engine.tensorrt.calibration.cal_batches=2");

        var result = await bed.RunAsync(command);

        var build = fake.Runs[0].Split(' ');
        Assert.Contains("--int8", build);
        Assert.DoesNotContain("--fp16", build);
        Assert.Contains(build, a => a.StartsWith("--onnx=", StringComparison.Ordinal) && a.EndsWith("model.int8.onnx", StringComparison.Ordinal));
        var contextPath = command.OutputUri.Append("model_ctx.onnx").LocalPath;
        Assert.Equal("model.int8.onnx", EpContextModel.Read(OnnxModelReader.Load(contextPath), contextPath)!.SourceOnnxFile);
        Assert.True(result.Artifacts.ContainsKey("calibration_cache"));
        var manifest = await bed.ManifestAsync(command.OutputUri);
        Assert.Equal(("int8", "qdq_model"), (manifest.Precision, manifest.TensorRt!.Int8Input));

        // The same ranges in TensorRT's calibration-cache format, headed with the version that built the engine.
        var table = CalibrationTable.FromJson(await bed.ReadTextAsync(command.OutputUri.Append("calibration.json")), "calibration.json");
        var cacheUri = command.OutputUri.Append("calibration.cache");
        Assert.Equal(cacheUri.AbsoluteUri, manifest.TensorRt.Int8CalibrationCacheUri);
        var (version, calibrator, scales) = TensorRtCalibrationCache.Parse(await bed.ReadTextAsync(cacheUri), "calibration.cache");
        Assert.Equal((100300L, "EntropyCalibration2"), (version, calibrator));
        Assert.Equal(table.Tensors.ToDictionary(t => t.Key, t => t.Value.Scale), scales);
    }

    [Fact]
    public async Task Layer_precisions_and_a_timing_cache_reach_trtexec_and_the_updated_cache_stays_in_the_job_folder()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        var fake = Install(bed, TrtexecBehaviour.Succeeds, embedding);
        var cache = bed.Temp.Combine("caches", "a100.timing.cache");
        Directory.CreateDirectory(Path.GetDirectoryName(cache)!);
        await File.WriteAllTextAsync(cache, "earlier timings\n");
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.tensorrt.data_type=fp16",
            "gen_trt_engine.tensorrt.layers_precision=[\"/blocks.0/norm1/LayerNormalization:fp32\"]",
            $"gen_trt_engine.timing_cache={cache}");

        await bed.RunAsync(command);

        var build = fake.Runs[0].Split(' ');
        Assert.Contains("--layerPrecisions=/blocks.0/norm1/LayerNormalization:fp32", build);
        Assert.Contains("--precisionConstraints=obey", build);
        var used = build.Single(a => a.StartsWith("--timingCacheFile=", StringComparison.Ordinal))["--timingCacheFile=".Length..];
        Assert.NotEqual(cache, used);
        Assert.Equal("earlier timings\n", await File.ReadAllTextAsync(cache));
        var kept = command.OutputUri.Append("timing.cache");
        Assert.Equal("earlier timings\ntimings of this build\n", await bed.ReadTextAsync(kept));
        Assert.Equal(kept.AbsoluteUri, (await bed.ManifestAsync(command.OutputUri)).TensorRt!.TimingCacheUri);
    }

    [Fact]
    public async Task A_non_zero_exit_fails_the_job_with_the_exit_code_and_the_tail_of_the_log()
    {
        var (bed, _) = await SamePictureBedAsync();
        using var __ = bed;
        Install(bed, TrtexecBehaviour.FailsToBuild);
        var command = bed.Command("pipeline.deploy.target=tensorrt");

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(command));

        Assert.Contains("trtexec exited with code 1", error.Message);
        Assert.Contains("out of memory for tactic", error.Message);
        Assert.Contains(command.OutputUri.Append("trtexec_build.log").ToString(), error.Message);
        Assert.Contains("out of memory", await bed.ReadTextAsync(command.OutputUri.Append("trtexec_build.log")));
    }

    [Fact]
    public async Task A_model_tensorrt_cannot_parse_fails_saying_so_with_the_parser_errors()
    {
        var (bed, _) = await SamePictureBedAsync();
        using var __ = bed;
        Install(bed, TrtexecBehaviour.CannotParse);

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command("pipeline.deploy.target=tensorrt")));

        Assert.StartsWith("TensorRT could not parse the ONNX model", error.Message);
        Assert.Contains(bed.ModelUri.ToString(), error.Message);
        Assert.Contains("No importer registered for op: Foo", error.Message);
    }

    [Fact]
    public async Task Success_without_an_engine_file_fails_the_job()
    {
        var (bed, _) = await SamePictureBedAsync();
        using var __ = bed;
        Install(bed, TrtexecBehaviour.WritesNoEngine);

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(bed.Command("pipeline.deploy.target=tensorrt")));

        Assert.Contains("wrote no engine", error.Message);
        Assert.Contains("--saveEngine", error.Message);
    }

    [Fact]
    public async Task An_engine_whose_outputs_disagree_with_onnx_runtime_is_rejected()
    {
        var (bed, embedding) = await SamePictureBedAsync();
        using var _ = bed;
        Install(bed, TrtexecBehaviour.Succeeds, [.. embedding.Select((v, i) => i % 2 == 0 ? -v : v)]);
        var command = bed.Command("pipeline.deploy.target=tensorrt", "gen_trt_engine.tensorrt.data_type=fp16");

        var error = await Assert.ThrowsAsync<StageInputException>(() => bed.RunAsync(command));

        Assert.Contains("min cosine", error.Message);
        Assert.Contains("< 0.999", error.Message);
        Assert.False((await bed.ManifestAsync(command.OutputUri)).Accepted);
        Assert.Null(await bed.Store.GetInfoAsync(command.OutputUri.Append("model.engine"), CancellationToken.None));
    }
}
