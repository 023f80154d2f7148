using Microsoft.Extensions.Logging;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.EpContext;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration.TensorRt;

/// <summary>
/// The <c>tensorrt</c> target: trtexec builds the engine (fp16 keeps LayerNorm and Softmax in fp32 unless the spec
/// says otherwise; int8 builds from the Q/DQ model), runs it once against ONNX Runtime fp32, and the engine is
/// wrapped in an EP-context model so ONNX Runtime's TensorRT provider loads this engine rather than building its own.
/// </summary>
internal sealed class TensorRtTarget(TensorRtEngineBuilder tensorRt, IArtifactStore store, TimeProvider clock, ILogger logger)
{
    public async Task<BuiltArtifact> BuildAsync(EngineJob job, SourceModel source, QuantizationResult? quantization, string deployOnnx,
        Verification verification, float[] verificationInput, float[] reference, CancellationToken cancellationToken)
    {
        var settings = job.Settings;
        var enginePath = Path.Combine(job.Work, EngineArtifacts.Engine);
        var timingCache = await FetchTimingCacheAsync(job, cancellationToken);
        var (layers, defaultLayers) = LayerPrecisionDefaults.For(settings, source.Model.Graph!);
        if (defaultLayers)
        {
            logger.LogInformation("fp16 engine: {Count} LayerNormalization and Softmax layers kept in fp32 (gen_trt_engine.tensorrt.layers_precision is empty)",
                layers.Count);
        }

        var request = new TrtexecBuildRequest
        {
            OnnxPath = deployOnnx,
            EnginePath = enginePath,
            Precision = settings.Precision,
            InputName = source.InputName,
            Profile = source.Profile,
            WorkspaceMiB = settings.WorkspaceMiB,
            TimingCachePath = timingCache.LocalPath,
            LayersPrecision = layers,
        };

        await job.ReportAsync(0.7, "building the TensorRT engine with trtexec", cancellationToken);
        var buildLog = Path.Combine(job.Work, EngineArtifacts.BuildLog);
        var lastLine = "";
        TensorRtBuildResult build;
        try
        {
            var building = tensorRt.BuildAsync(request, buildLog, $"{source.OnnxUri} ({Path.GetFileName(deployOnnx)})", settings.Verbose,
                line => Volatile.Write(ref lastLine, line), cancellationToken);
            while (!building.IsCompleted)
            {
                await Task.WhenAny(building, Task.Delay(TimeSpan.FromSeconds(2), cancellationToken));
                await job.ReportAsync(0.75, $"building the TensorRT engine: {Volatile.Read(ref lastLine)}", cancellationToken);
            }

            build = await building;
        }
        catch (TrtexecFailedException exception)
        {
            throw await FailWithLogAsync(job, exception, EngineArtifacts.BuildLog, cancellationToken);
        }

        logger.LogInformation("TensorRT {Version} built {Engine} on {Gpu} in {Seconds:F1} s",
            build.Host.TensorRtVersion ?? "(version not reported)", enginePath, build.Host.Gpu ?? "(GPU not reported)", build.Elapsed.TotalSeconds);
        if (build.Host is not { TensorRtVersion: { } version, Gpu: { } gpu, ComputeCapability: { } computeCapability })
        {
            var log = await store.PutFileAsync(job.Output(EngineArtifacts.BuildLog), buildLog, cancellationToken);
            throw new StageInputException(
                "trtexec's log does not say which TensorRT and GPU built the engine (no 'TensorRT version:', 'Selected Device:' or 'Compute Capability:' line), " +
                $"so inference hosts could not be checked against it. Use trtexec from TensorRT 8.6 or later. Log: {log.Uri}");
        }

        await job.ReportAsync(0.9, "running the engine on sample images", cancellationToken);
        var verifyLog = Path.Combine(job.Work, EngineArtifacts.VerifyLog);
        var batch = Math.Clamp(verification.Count, source.Profile.MinBatch, source.Profile.MaxBatch);
        var rows = Math.Min(verification.Count, batch);
        float[] actual;
        try
        {
            actual = await tensorRt.RunEngineAsync(enginePath, source.InputName, OnnxRuns.Repeat(verificationInput, verification.Count, batch, source.ImageFloats),
                batch, source.Profile, source.OutputName, job.Work, verifyLog, cancellationToken);
        }
        catch (TrtexecFailedException exception)
        {
            throw await FailWithLogAsync(job, exception, EngineArtifacts.VerifyLog, cancellationToken);
        }

        var d = source.EmbeddingDimension;
        var fidelity = FidelityCheck.Judge(job, verification with { Count = rows }, reference.AsSpan(0, rows * d).ToArray(), actual.AsSpan(0, rows * d).ToArray(), d,
            logger);

        var artifactUri = settings.TrtEngine is { } engineLocation
            ? EngineLocations.ObjectUri(engineLocation, job.Command.OutputUri, "gen_trt_engine.trt_engine")
            : job.Output(EngineArtifacts.Engine);
        var onnxName = quantization is null ? EngineArtifacts.SourceModel : EngineArtifacts.QdqModel;
        var context = new TensorRtEngineContext
        {
            EngineFile = Uri.UnescapeDataString(artifactUri.Segments[^1]),
            EngineSha256 = await Task.Run(() => ActivationCalibrator.Sha256Of(enginePath), cancellationToken),
            SourceOnnxFile = onnxName,
            TensorRtVersion = version,
            Gpu = gpu,
            ComputeCapability = computeCapability,
            Precision = settings.Precision,
        };
        var contextPath = Path.Combine(job.Work, EngineArtifacts.EpContextModel);
        OnnxModelWriter.Save(EpContextModel.Create(source.Model, context), contextPath);

        var uploads = new Dictionary<string, (Uri Uri, string Path)>
        {
            ["engine"] = (artifactUri, enginePath),
            ["ep_context_model"] = (job.Output(EngineArtifacts.EpContextModel), contextPath),
            ["build_log"] = (job.Output(EngineArtifacts.BuildLog), buildLog),
            ["verify_log"] = (job.Output(EngineArtifacts.VerifyLog), verifyLog),
        };
        if (File.Exists(timingCache.LocalPath))
        {
            uploads["timing_cache"] = (job.Output(EngineArtifacts.TimingCache), timingCache.LocalPath);
        }

        Uri? tensorRtCalibrationCache = null;
        if (quantization is null)
        {
            // The engine's ONNX model travels with it: the EP-context model names it, and inference runs it when asked to run without TensorRT.
            uploads["onnx"] = (job.Output(EngineArtifacts.SourceModel), source.ModelPath);
            if (File.Exists(source.ModelPath + ".data"))
            {
                uploads["onnx_data"] = (job.Output(EngineArtifacts.SourceModel + ".data"), source.ModelPath + ".data");
            }
        }
        else
        {
            var table = quantization.Table;
            var cachePath = Path.Combine(job.Work, EngineArtifacts.TensorRtCalibrationCache);
            await File.WriteAllTextAsync(cachePath, TensorRtCalibrationCache.Write(table, TensorRtVersion.Encode(version)), cancellationToken);
            tensorRtCalibrationCache = job.Output(EngineArtifacts.TensorRtCalibrationCache);
            uploads["tensorrt_calibration_cache"] = (tensorRtCalibrationCache, cachePath);
        }

        var manifest = new EngineManifest
        {
            Target = DeployTargets.TensorRt,
            Precision = settings.Precision,
            ArtifactUri = artifactUri.AbsoluteUri,
            OnnxFile = onnxName,
            Accepted = fidelity.Passed,
            Profile = source.Manifest,
            Source = source.Description,
            TensorRt = new TensorRtBuild
            {
                Version = version,
                Gpu = gpu,
                ComputeCapability = computeCapability,
                EngineSha256 = context.EngineSha256,
                EpContextModelUri = job.Output(EngineArtifacts.EpContextModel).AbsoluteUri,
                Trtexec = tensorRt.Trtexec,
                Arguments = build.Arguments,
                WorkspaceMiB = settings.WorkspaceMiB,
                LayersPrecision = [.. layers.Select(l => l.ToString())],
                LayersPrecisionDefault = defaultLayers,
                Int8Input = quantization is null ? null : Int8Inputs.QdqModel,
                Int8CalibrationCacheUri = tensorRtCalibrationCache?.AbsoluteUri,
                TimingCacheUri = job.Output(EngineArtifacts.TimingCache).AbsoluteUri,
                BuildLogUri = job.Output(EngineArtifacts.BuildLog).AbsoluteUri,
                VerifyLogUri = job.Output(EngineArtifacts.VerifyLog).AbsoluteUri,
                BuildSeconds = build.Elapsed.TotalSeconds,
            },
            Calibration = quantization?.Summary,
            Fidelity = fidelity,
            CreatedAt = clock.GetUtcNow(),
        };
        return new BuiltArtifact(manifest, artifactUri, uploads, new Dictionary<string, double> { ["build_seconds"] = build.Elapsed.TotalSeconds })
        {
            MetadataOnnxFile = EngineArtifacts.EpContextModel,
        };
    }

    private async Task<(string LocalPath, Uri? SharedUri)> FetchTimingCacheAsync(EngineJob job, CancellationToken cancellationToken)
    {
        var local = Path.Combine(job.Work, EngineArtifacts.TimingCache);
        File.Delete(local);
        if (job.Settings.TimingCache is not { } value)
        {
            return (local, null);
        }

        var uri = EngineLocations.ObjectUri(value, relativeTo: null, "gen_trt_engine.timing_cache");
        if (await store.GetInfoAsync(uri, cancellationToken) is not null)
        {
            // A copy: trtexec rewrites the file, and the updated one is kept in the job's folder, never written back.
            await using var from = await store.OpenReadAsync(uri, cancellationToken);
            await using var to = File.Create(local);
            await from.CopyToAsync(to, cancellationToken);
            logger.LogInformation("Reusing the TensorRT timing cache {TimingCacheUri}", uri);
        }

        return (local, uri);
    }

    private async Task<StageInputException> FailWithLogAsync(EngineJob job, TrtexecFailedException exception, string logName, CancellationToken cancellationToken)
    {
        if (!File.Exists(exception.LogPath))
        {
            return new StageInputException(exception.Message, exception);
        }

        var uri = job.Output(logName);
        try
        {
            await store.PutFileAsync(uri, exception.LogPath, cancellationToken);
            return new StageInputException($"{exception.Message}\nFull log: {uri}", exception);
        }
        catch (Exception upload) when (upload is not OperationCanceledException)
        {
            logger.LogWarning(upload, "Could not upload the trtexec log {LogPath}", exception.LogPath);
            return new StageInputException($"{exception.Message}\nFull log (on the worker): {exception.LogPath}", exception);
        }
    }
}

/// <summary>What an int8 engine was built from (engine.json's <c>tensorrt.int8_input</c>).</summary>
public static class Int8Inputs
{
    /// <summary>The Q/DQ model: TensorRT's explicit quantisation with the project's scales on the Q/DQ nodes.</summary>
    public const string QdqModel = "qdq_model";
}
