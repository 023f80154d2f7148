using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.EngineGeneration.Images;
using NvDinoPipeline.EngineGeneration.OnnxRuntime;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Quantization;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// One engine generation job: reads the exported model, calibrates and quantises it for int8, builds the deploy
/// artifact for the target (a TensorRT engine through trtexec, or ONNX Runtime's optimised model), checks the
/// artifact's embeddings against ONNX Runtime fp32 on sample images, and publishes it with its <c>engine.json</c>.
/// </summary>
public sealed class EngineGenerationRunner(
    IArtifactStore store,
    TrtexecLocator locator,
    IOptions<EngineGenerationOptions> options,
    TimeProvider clock,
    ILogger<EngineGenerationRunner> logger) : IStageRunner<GenerateEngine, EngineGenerated>
{
    public async Task<StageResult<EngineGenerated>> RunAsync(GenerateEngine command, StageContext context, CancellationToken cancellationToken)
    {
        var settings = EngineSettings.FromSpec(context.Spec);
        var host = options.Value;

        // Before any download or calibration: a host without TensorRT fails the job at once.
        var tensorRt = settings.Target == DeployTargets.TensorRt
            ? new TensorRtEngineBuilder(locator.Locate(), host.TrtexecTimeout, logger)
            : null;

        var job = new Job(command, context, settings, host, Path.Combine(context.ScratchDirectory, "work"));
        Directory.CreateDirectory(job.Work);
        Directory.CreateDirectory(job.Downloads);
        logger.LogInformation("Generating a {Target} {Precision} artifact for pipeline {PipelineId} job {JobId}",
            settings.Target, settings.Precision, command.PipelineId, command.JobId);

        await job.ReportAsync(0.01, "reading the exported model", cancellationToken);
        var source = await LoadSourceAsync(job, cancellationToken);

        using var images = await ImageSources.OpenAsync(store, settings.Calibration.ImageDirectories, command.CalibrationDatasetUri,
            job.Downloads, cancellationToken);

        // The same draw whether or not a calibration cache is reused, so its verification images are the ones the
        // calibrating job held out (for the same dataset).
        var split = images is null
            ? null
            : SampleSplit.Create(images.Count, settings.IsInt8 ? settings.Calibration.BatchSize * settings.Calibration.Batches : 0, host.VerificationImages);
        var quantization = settings.IsInt8 ? await QuantizeAsync(job, source, images, split, cancellationToken) : null;
        var deployOnnx = quantization?.QdqModelPath ?? source.ModelPath;

        using var verification = VerificationImages(job, source, images, split, quantization);
        await job.ReportAsync(0.62, $"computing reference embeddings on {verification.Count} image(s) with ONNX Runtime fp32", cancellationToken);
        var verificationInput = ImageSources.Batch(verification.Source, verification.Indices, source.Preprocessor);
        var reference = await OnnxRuntimeStepAsync(() => RunOnnx(source.ModelPath, verificationInput, verification.Count, source, host.IntraOpThreads),
            $"run {source.OnnxUri}", cancellationToken);

        return tensorRt is null
            ? await BuildOnnxRuntimeAsync(job, source, quantization, deployOnnx, verification, verificationInput, reference, cancellationToken)
            : await BuildTensorRtAsync(job, tensorRt, source, quantization, deployOnnx, verification, verificationInput, reference, cancellationToken);
    }

    private async Task<StageResult<EngineGenerated>> BuildOnnxRuntimeAsync(Job job, SourceModel source, QuantizationResult? quantization,
        string deployOnnx, Verification verification, float[] verificationInput, float[] reference, CancellationToken cancellationToken)
    {
        var level = job.Host.OnnxRuntimeOptimization;
        await job.ReportAsync(0.7, $"optimising the model with ONNX Runtime ({level})", cancellationToken);
        var artifactPath = Path.Combine(job.Work, EngineArtifacts.OnnxRuntimeModel);
        var files = await OnnxRuntimeStepAsync(() => OnnxRuntimeArtifact.Write(deployOnnx, artifactPath, OnnxRuntimeArtifact.ParseLevel(level), job.Host.IntraOpThreads),
            $"optimise {Path.GetFileName(deployOnnx)} (from {source.OnnxUri})", cancellationToken);

        await job.ReportAsync(0.85, "checking the artifact against ONNX Runtime fp32", cancellationToken);
        var actual = await OnnxRuntimeStepAsync(() => RunOnnx(artifactPath, verificationInput, verification.Count, source, job.Host.IntraOpThreads),
            $"run its optimised {Path.GetFileName(artifactPath)}", cancellationToken);
        var fidelity = Judge(job, verification, reference, actual, source.EmbeddingDimension);

        var artifactUri = job.Output(EngineArtifacts.OnnxRuntimeModel);
        var uploads = new Dictionary<string, (Uri Uri, string Path)>
        {
            ["model"] = (artifactUri, artifactPath),
        };
        if (files.Count > 1)
        {
            uploads["model_data"] = (job.Output(EngineArtifacts.OnnxRuntimeModel + ".data"), files[1]);
        }

        var manifest = new EngineManifest
        {
            Target = DeployTargets.OnnxRuntime,
            Precision = job.Settings.Precision,
            ArtifactUri = artifactUri.AbsoluteUri,
            OnnxFile = EngineArtifacts.OnnxRuntimeModel,
            Accepted = fidelity.Passed,
            Profile = source.Manifest,
            Source = source.Description,
            OnnxRuntime = new OnnxRuntimeBuild(OnnxRuntimeArtifact.Version, level, "CPUExecutionProvider"),
            Calibration = quantization?.Summary,
            Fidelity = fidelity,
            CreatedAt = clock.GetUtcNow(),
        };
        return await PublishAsync(job, source, quantization, manifest, artifactUri, uploads, metrics: [], cancellationToken);
    }

    private async Task<StageResult<EngineGenerated>> BuildTensorRtAsync(Job job, TensorRtEngineBuilder tensorRt, SourceModel source,
        QuantizationResult? quantization, string deployOnnx, Verification verification, float[] verificationInput, float[] reference,
        CancellationToken cancellationToken)
    {
        var settings = job.Settings;
        var enginePath = Path.Combine(job.Work, EngineArtifacts.Engine);
        var timingCache = await FetchTimingCacheAsync(job, cancellationToken);
        var request = new TrtexecBuildRequest
        {
            OnnxPath = deployOnnx,
            EnginePath = enginePath,
            Precision = settings.Precision,
            InputName = source.InputName,
            Profile = source.Profile,
            WorkspaceMiB = settings.WorkspaceMiB,
            TimingCachePath = timingCache.LocalPath,
            LayersPrecision = settings.LayersPrecision,
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

        await job.ReportAsync(0.9, "running the engine on sample images", cancellationToken);
        var verifyLog = Path.Combine(job.Work, EngineArtifacts.VerifyLog);
        var batch = Math.Clamp(verification.Count, source.Profile.MinBatch, source.Profile.MaxBatch);
        var rows = Math.Min(verification.Count, batch);
        float[] actual;
        try
        {
            actual = await tensorRt.RunEngineAsync(enginePath, source.InputName, Repeat(verificationInput, verification.Count, batch, source.ImageFloats),
                batch, source.Profile, source.OutputName, job.Work, verifyLog, cancellationToken);
        }
        catch (TrtexecFailedException exception)
        {
            throw await FailWithLogAsync(job, exception, EngineArtifacts.VerifyLog, cancellationToken);
        }

        var d = source.EmbeddingDimension;
        var fidelity = Judge(job, verification with { Count = rows }, reference.AsSpan(0, rows * d).ToArray(), actual.AsSpan(0, rows * d).ToArray(), d);

        var artifactUri = settings.TrtEngine is { } engineLocation
            ? EngineLocations.ObjectUri(engineLocation, job.Command.OutputUri, "gen_trt_engine.trt_engine")
            : job.Output(EngineArtifacts.Engine);
        var onnxName = quantization is null ? EngineArtifacts.SourceModel : EngineArtifacts.QdqModel;
        var uploads = new Dictionary<string, (Uri Uri, string Path)>
        {
            ["engine"] = (artifactUri, enginePath),
            ["build_log"] = (job.Output(EngineArtifacts.BuildLog), buildLog),
            ["verify_log"] = (job.Output(EngineArtifacts.VerifyLog), verifyLog),
        };
        if (File.Exists(timingCache.LocalPath))
        {
            uploads["timing_cache"] = (job.Output(EngineArtifacts.TimingCache), timingCache.LocalPath);
        }

        if (quantization is null)
        {
            // The engine's ONNX model travels with it: ONNX Runtime's TensorRT provider builds from it on inference hosts.
            uploads["onnx"] = (job.Output(EngineArtifacts.SourceModel), source.ModelPath);
            if (File.Exists(source.ModelPath + ".data"))
            {
                uploads["onnx_data"] = (job.Output(EngineArtifacts.SourceModel + ".data"), source.ModelPath + ".data");
            }
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
                Version = build.Host.TensorRtVersion,
                Gpu = build.Host.Gpu,
                ComputeCapability = build.Host.ComputeCapability,
                Trtexec = tensorRt.Trtexec,
                Arguments = build.Arguments,
                WorkspaceMiB = settings.WorkspaceMiB,
                LayersPrecision = [.. settings.LayersPrecision.Select(l => l.ToString())],
                TimingCacheUri = job.Output(EngineArtifacts.TimingCache).AbsoluteUri,
                BuildLogUri = job.Output(EngineArtifacts.BuildLog).AbsoluteUri,
                VerifyLogUri = job.Output(EngineArtifacts.VerifyLog).AbsoluteUri,
                BuildSeconds = build.Elapsed.TotalSeconds,
            },
            Calibration = quantization?.Summary,
            Fidelity = fidelity,
            CreatedAt = clock.GetUtcNow(),
        };
        return await PublishAsync(job, source, quantization, manifest, artifactUri, uploads,
            metrics: new Dictionary<string, double> { ["build_seconds"] = build.Elapsed.TotalSeconds }, cancellationToken);
    }

    /// <summary>
    /// Uploads everything, then completes, or fails the job when the artifact missed its fidelity bound: the
    /// report (<c>engine.json</c>, calibration cache, logs) is still uploaded so the figures can be inspected.
    /// </summary>
    private async Task<StageResult<EngineGenerated>> PublishAsync(Job job, SourceModel source, QuantizationResult? quantization,
        EngineManifest manifest, Uri artifactUri, Dictionary<string, (Uri Uri, string Path)> uploads, Dictionary<string, double> metrics,
        CancellationToken cancellationToken)
    {
        await job.ReportAsync(0.95, "uploading the artifacts", cancellationToken);
        var artifacts = new Dictionary<string, Uri>();
        async Task PutAsync(string key, Uri uri, string path)
        {
            await store.PutFileAsync(uri, path, cancellationToken);
            artifacts[key] = uri;
        }

        async Task PutTextAsync(string key, string name, string text)
        {
            var path = Path.Combine(job.Work, name);
            await File.WriteAllTextAsync(path, text, cancellationToken);
            await PutAsync(key, job.Output(name), path);
        }

        if (quantization is not null)
        {
            await PutAsync("calibration_cache", job.Output(EngineArtifacts.CalibrationCache), quantization.CachePath);
            await PutAsync("qdq_model", job.Output(EngineArtifacts.QdqModel), quantization.QdqModelPath);
            if (File.Exists(quantization.QdqModelPath + ".data"))
            {
                await PutAsync("qdq_model_data", job.Output(EngineArtifacts.QdqModel + ".data"), quantization.QdqModelPath + ".data");
            }
        }

        var fidelity = manifest.Fidelity;
        if (!fidelity.Passed)
        {
            foreach (var (key, (uri, path)) in uploads.Where(u => u.Key.EndsWith("_log", StringComparison.Ordinal) && File.Exists(u.Value.Path)))
            {
                await PutAsync(key, uri, path);
            }

            await PutTextAsync("engine_manifest", EngineManifest.FileName, manifest.ToJson());
            throw new StageInputException(FidelityFailure(job, manifest, quantization, job.Output(EngineManifest.FileName)));
        }

        foreach (var (key, (uri, path)) in uploads)
        {
            await PutAsync(key, uri, path);
        }

        // The export's metadata, now naming the ONNX file that travels with this artifact.
        var metadata = source.Metadata with { OnnxFile = manifest.OnnxFile };
        await PutTextAsync("model_metadata", EngineArtifacts.ModelMetadata, metadata.ToJson());
        await PutTextAsync("engine_manifest", EngineManifest.FileName, manifest.ToJson());

        metrics["mean_cosine"] = fidelity.MeanCosine;
        metrics["min_cosine"] = fidelity.MinCosine;
        metrics["max_abs_error"] = fidelity.MaxAbsError;
        metrics["verification_images"] = fidelity.ImageCount;
        if (quantization is not null)
        {
            metrics["calibration_images"] = quantization.Summary.Images;
            metrics["calibration_seconds"] = quantization.Summary.Seconds;
            metrics["quantized_nodes"] = quantization.Summary.QuantizedNodes;
        }

        logger.LogInformation("{Target} {Precision} artifact {ArtifactUri} published: {Fidelity}",
            manifest.Target, manifest.Precision, artifactUri, $"mean cosine {fidelity.MeanCosine:F5}, min cosine {fidelity.MinCosine:F5}");
        var profile = source.Profile;
        var completed = new EngineGenerated
        {
            PipelineId = job.Command.PipelineId,
            JobId = job.Command.JobId,
            ParentJobId = job.Command.ParentJobId,
            ArtifactUri = artifactUri,
            Target = manifest.Target,
            Precision = manifest.Precision,
            ModelMetadataUri = job.Output(EngineArtifacts.ModelMetadata),
            MinBatchSize = profile.MinBatch,
            OptBatchSize = profile.OptBatch,
            MaxBatchSize = profile.MaxBatch,
        };
        await job.ReportNowAsync(1, "artifact published", cancellationToken);
        return new StageResult<EngineGenerated>(completed, artifacts, metrics);
    }

    private static string FidelityFailure(Job job, EngineManifest manifest, QuantizationResult? quantization, Uri report)
    {
        var f = manifest.Fidelity;
        var ic = CultureInfo.InvariantCulture;
        var figure = f.Bound == "mean_cosine" ? f.MeanCosine : f.MinCosine;
        var measured = string.Create(ic,
            $"The {manifest.Target} {manifest.Precision} artifact's embeddings are too far from ONNX Runtime fp32 on {f.ImageCount} {(f.HeldOut ? "held-out " : "")}image(s): ")
            + string.Create(ic, $"{f.Bound.Replace('_', ' ')} {figure:F5} < {f.BoundValue} (mean cosine {f.MeanCosine:F5}, min cosine {f.MinCosine:F5}, max |Δ| {f.MaxAbsError:G3}). ")
            + $"Report: {report}.";
        if (quantization is null)
        {
            return measured + " Keep sensitive layers in fp32 with gen_trt_engine.tensorrt.layers_precision (e.g. the LayerNormalization and Softmax nodes), or build in fp32.";
        }

        return measured
            + string.Create(ic, $" Calibration: {job.Settings.Calibration.Method.ToSpecName()} over {quantization.Summary.Images} image(s).")
            + " Try another gen_trt_engine.tensorrt.calibration.method (minmax, percentile, entropy), more cal_batches, a higher percentile, "
            + "keeping the most sensitive MatMuls in float with layers_precision \"<node>:fp32\", or data_type fp32/fp16.";
    }

    private FidelitySummary Judge(Job job, Verification verification, float[] reference, float[] actual, int dimension)
    {
        var report = EmbeddingFidelity.Compare(reference, actual, dimension);
        var (bound, value, figure) = job.Settings.Precision switch
        {
            Precisions.Int8 => ("mean_cosine", job.Host.MinMeanCosineInt8, report.MeanCosine),
            Precisions.Fp16 => ("min_cosine", job.Host.MinCosineFp16, report.MinCosine),
            _ => ("min_cosine", job.Host.MinCosineFp32, report.MinCosine),
        };
        logger.LogInformation("Artifact against ONNX Runtime fp32: {Report}", report.ToString());
        return new FidelitySummary
        {
            Images = verification.Description,
            ImageCount = report.Rows,
            HeldOut = verification.HeldOut,
            MeanCosine = report.MeanCosine,
            MinCosine = report.MinCosine,
            MaxAbsError = report.MaxAbsError,
            Bound = bound,
            BoundValue = value,
            Passed = figure >= value,
        };
    }

    private async Task<StageInputException> FailWithLogAsync(Job job, TrtexecFailedException exception, string logName, CancellationToken cancellationToken)
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

    private async Task<SourceModel> LoadSourceAsync(Job job, CancellationToken cancellationToken)
    {
        var command = job.Command;
        var metadata = await ReadMetadataAsync(command.ModelMetadataUri, cancellationToken);
        var onnxUri = job.Settings.OnnxFile is { } onnxFile
            ? EngineLocations.ObjectUri(onnxFile, EngineLocations.FolderOf(command.OnnxModelUri), "gen_trt_engine.onnx_file")
            : command.OnnxModelUri;
        var modelPath = await FetchModelAsync(onnxUri, job.Downloads, cancellationToken);
        var sha256 = await Task.Run(() => ActivationCalibrator.Sha256Of(modelPath), cancellationToken);
        ModelProto model;
        try
        {
            // Only quantisation reads the weights; the other builds need the graph alone.
            model = OnnxModelReader.Load(modelPath, loadExternalData: job.Settings.IsInt8);
        }
        catch (Exception exception) when (exception is InvalidDataException or ProtoBuf.ProtoException or EndOfStreamException or IOException)
        {
            throw new StageInputException($"{onnxUri} is not a readable ONNX model: {exception.Message}", exception);
        }

        var graph = model.Graph!;
        var input = graph.Input.FirstOrDefault(i => i.Name == metadata.Input.Name)
            ?? throw new StageInputException(
                $"{onnxUri} has inputs [{string.Join(", ", graph.Input.Select(i => i.Name))}], but its metadata {command.ModelMetadataUri} describes input '{metadata.Input.Name}'.");
        var outputName = metadata.Outputs[0].Name;
        if (graph.Output.All(o => o.Name != outputName))
        {
            throw new StageInputException(
                $"{onnxUri} has outputs [{string.Join(", ", graph.Output.Select(o => o.Name))}], but its metadata {command.ModelMetadataUri} names the embedding '{outputName}'.");
        }

        CheckLayerNames(job.Settings.LayersPrecision, graph);
        var profile = Profile(job.Settings, metadata, input, onnxUri);
        return new SourceModel(onnxUri, modelPath, sha256, model, metadata, input.Name!, outputName, profile)
        {
            Description = new EngineSource(onnxUri.AbsoluteUri, sha256, command.ModelMetadataUri.AbsoluteUri),
        };
    }

    private async Task<ModelMetadata> ReadMetadataAsync(Uri uri, CancellationToken cancellationToken)
    {
        string json;
        try
        {
            await using var stream = await store.OpenReadAsync(uri, cancellationToken);
            using var reader = new StreamReader(stream);
            json = await reader.ReadToEndAsync(cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new StageInputException($"Model metadata {uri} does not exist.", exception);
        }

        try
        {
            return ModelMetadata.FromJson(json, uri.ToString());
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>The model as a local file, with its external data file (<c>&lt;model&gt;.data</c>) beside it when it has one.</summary>
    private async Task<string> FetchModelAsync(Uri uri, string folder, CancellationToken cancellationToken)
    {
        string path;
        try
        {
            path = await store.GetLocalPathAsync(uri, folder, cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new StageInputException($"ONNX model {uri} does not exist.", exception);
        }

        var data = new Uri(uri.AbsoluteUri + ".data");
        if (await store.GetInfoAsync(data, cancellationToken) is not null)
        {
            var dataPath = await store.GetLocalPathAsync(data, folder, cancellationToken);
            if (dataPath != path + ".data")
            {
                throw new StageInputException($"ONNX model {uri} and its external data {data} were not fetched side by side ('{path}', '{dataPath}').");
            }
        }

        return path;
    }

    /// <summary>
    /// The one optimisation profile: the spec's min/opt/max (or its fixed <c>batch_size</c>), at the metadata's
    /// pre-processing size; a model exported with a fixed batch allows only that batch.
    /// </summary>
    private static ShapeProfile Profile(EngineSettings settings, ModelMetadata metadata, ValueInfoProto input, Uri onnxUri)
    {
        var dims = input.Type?.TensorType?.Shape?.Dim;
        if (dims is null || dims.Count != 4)
        {
            throw new StageInputException($"Input '{input.Name}' of {onnxUri} is not a [B,C,H,W] tensor.");
        }

        var (height, width) = (metadata.Preprocessing.Height, metadata.Preprocessing.Width);
        foreach (var (index, size, name) in new[] { (2, height, "height"), (3, width, "width") })
        {
            if (dims[index].DimValue is > 0 and var fixedSize && fixedSize != size)
            {
                throw new StageInputException(
                    $"Input '{input.Name}' of {onnxUri} has a fixed {name} of {fixedSize}, but its metadata pre-processes images to {size}.");
            }
        }

        var channels = (int)(dims[1].DimValue ?? 3);
        var dynamic = dims.Any(d => d.DimValue is null or <= 0);
        if (dims[0].DimValue is > 0 and var fixedBatch)
        {
            if (settings.BatchSize != -1 && settings.BatchSize != fixedBatch)
            {
                throw new StageInputException(
                    $"gen_trt_engine.batch_size is {settings.BatchSize}, but {onnxUri} was exported with a fixed batch of {fixedBatch}; use -1 or {fixedBatch}.");
            }

            return new ShapeProfile((int)fixedBatch, (int)fixedBatch, (int)fixedBatch, channels, height, width, dynamic);
        }

        return settings.BatchSize == -1
            ? new ShapeProfile(settings.MinBatchSize, settings.OptBatchSize, settings.MaxBatchSize, channels, height, width, dynamic)
            : new ShapeProfile(settings.BatchSize, settings.BatchSize, settings.BatchSize, channels, height, width, dynamic);
    }

    private static void CheckLayerNames(IReadOnlyList<LayerPrecision> layers, GraphProto graph)
    {
        var nodes = graph.Node.Where(n => !string.IsNullOrEmpty(n.Name)).ToDictionary(n => n.Name!, StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            if (layer.Layer.Contains('*'))
            {
                continue;
            }

            if (!nodes.TryGetValue(layer.Layer, out var node))
            {
                var closest = nodes.Keys.MinBy(name => Levenshtein(name, layer.Layer));
                throw new StageInputException(
                    $"gen_trt_engine.tensorrt.layers_precision names '{layer.Layer}', which is no node of the model" +
                    (closest is null ? "." : $"; did you mean '{closest}'?"));
            }

            if (layer.Precision == Precisions.Int8 && node.OpType is not ("MatMul" or "Gemm" or "Conv"))
            {
                throw new StageInputException(
                    $"gen_trt_engine.tensorrt.layers_precision asks for '{layer}', a {node.OpType} node: only MatMul, Gemm and Conv nodes are quantised to int8.");
            }
        }
    }

    private async Task<QuantizationResult> QuantizeAsync(Job job, SourceModel source, IImageSource? images, SampleSplit? split,
        CancellationToken cancellationToken)
    {
        var settings = job.Settings;
        var excluded = settings.LayersPrecision.Where(l => l.Precision != Precisions.Int8).Select(l => l.Layer).ToHashSet(StringComparer.Ordinal);
        if (excluded.Contains("*"))
        {
            excluded.UnionWith(source.Model.Graph!.Node.Select(n => n.Name ?? ""));
            excluded.ExceptWith(settings.LayersPrecision.Where(l => l.Precision == Precisions.Int8).Select(l => l.Layer));
        }

        var plan = QuantizationPlan.Create(source.Model, new QuantizationOptions { ExcludedNodes = excluded });
        if (plan.Nodes.Count == 0)
        {
            throw new StageInputException(
                $"int8 has nothing to quantise in {source.OnnxUri}: it has no MatMul, Gemm or Conv node with a constant weight outside layers_precision's float layers.");
        }

        var c = settings.Calibration;
        var cachePath = Path.Combine(job.Work, EngineArtifacts.CalibrationCache);
        Uri? sharedCache = c.CacheFile is { } cacheFile ? EngineLocations.ObjectUri(cacheFile, relativeTo: null, "gen_trt_engine.tensorrt.calibration.cal_cache_file") : null;
        CalibrationTable? table = null;
        var fromCache = false;
        if (sharedCache is not null && await store.GetInfoAsync(sharedCache, cancellationToken) is not null)
        {
            table = await ReadCacheAsync(sharedCache, source, plan, cancellationToken);
            fromCache = true;
            logger.LogInformation("Reusing the calibration cache {CacheUri} ({Method}, {Images} images)", sharedCache, table.Method, table.Images);
        }

        var clockStart = clock.GetTimestamp();
        string imagesDescription;
        if (table is null)
        {
            if (images is null || split is null)
            {
                throw new StageInputException(
                    "int8 needs calibration images, and this job has none: the command carries no staged dataset and " +
                    "gen_trt_engine.tensorrt.calibration.cal_image_dir is empty (a cal_cache_file from an earlier calibration of this model also works).");
            }

            var wanted = c.BatchSize * c.Batches;
            var batchSize = source.Profile.MinBatch == source.Profile.MaxBatch && !source.DynamicBatch ? source.Profile.MinBatch : c.BatchSize;
            var batches = CalibrationBatches(images, split.Calibration, batchSize, !source.DynamicBatch, source);
            if (split.Calibration.Count < wanted)
            {
                logger.LogWarning("Calibrating on {Images} images ({Batches} batches of {BatchSize}); the spec asks for {Wanted} but the dataset has {Count}",
                    split.Calibration.Count, batches.Count, batchSize, wanted, images.Count);
            }

            var calibration = new CalibrationSettings
            {
                Method = c.Method,
                Percentile = c.Percentile,
                HistogramBins = job.Host.HistogramBins,
                MemoryBudgetBytes = job.Host.CalibrationMemoryBudgetMiB * 1024L * 1024,
                IntraOpThreads = job.Host.IntraOpThreads,
            };
            var progress = new LatestProgress();
            var calibrating = Task.Run(() => ActivationCalibrator.Calibrate(source.ModelPath, plan, batches, calibration,
                Path.Combine(job.Work, "calibration"), progress, cancellationToken), cancellationToken);
            while (!calibrating.IsCompleted)
            {
                await Task.WhenAny(calibrating, Task.Delay(TimeSpan.FromSeconds(1), cancellationToken));
                await job.ReportAsync(0.05 + 0.5 * progress.Value,
                    $"calibrating ({c.Method.ToSpecName()}) on {split.Calibration.Count} image(s): {progress.Value:P0}", cancellationToken);
            }

            try
            {
                table = await calibrating;
            }
            catch (Exception exception) when (exception is InvalidDataException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
            {
                throw new StageInputException($"Calibration of {source.OnnxUri} failed: {exception.Message}", exception);
            }

            imagesDescription = images.Description;
        }
        else
        {
            imagesDescription = $"calibration cache {sharedCache}";
        }

        await File.WriteAllTextAsync(cachePath, table.ToJson(), cancellationToken);
        await job.ReportAsync(0.58, $"writing Q/DQ nodes around {plan.Nodes.Count} MatMul/Gemm/Conv nodes", cancellationToken);
        var qdqPath = Path.Combine(job.Work, EngineArtifacts.QdqModel);
        var quantized = QdqQuantizer.Quantize(source.Model, plan, table);
        OnnxModelWriter.Save(quantized, qdqPath);
        var seconds = clock.GetElapsedTime(clockStart).TotalSeconds;
        logger.LogInformation("Quantised {Nodes} nodes of {OnnxUri} with {Method} ranges in {Seconds:F1} s ({KeptInFloat} kept in float)",
            plan.Nodes.Count, source.OnnxUri, table.Method, seconds, plan.KeptInFloat.Count);
        return new QuantizationResult(qdqPath, cachePath, new CalibrationSummary
        {
            Method = table.Method,
            Percentile = table.Percentile,
            Images = table.Images,
            Batches = table.Batches,
            Source = imagesDescription,
            CacheUri = (fromCache ? sharedCache! : job.Output(EngineArtifacts.CalibrationCache)).AbsoluteUri,
            FromCache = fromCache,
            QuantizedNodes = plan.Nodes.Count,
            KeptInFloat = plan.KeptInFloat,
            Seconds = seconds,
        });
    }

    private async Task<CalibrationTable> ReadCacheAsync(Uri uri, SourceModel source, QuantizationPlan plan, CancellationToken cancellationToken)
    {
        string json;
        await using (var stream = await store.OpenReadAsync(uri, cancellationToken))
        using (var reader = new StreamReader(stream))
        {
            json = await reader.ReadToEndAsync(cancellationToken);
        }

        CalibrationTable table;
        try
        {
            table = CalibrationTable.FromJson(json, uri.ToString());
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }

        if (table.ModelSha256 != source.Sha256)
        {
            throw new StageInputException(
                $"Calibration cache {uri} was made for another model (SHA-256 {table.ModelSha256}, this one is {source.Sha256}); " +
                "remove gen_trt_engine.tensorrt.calibration.cal_cache_file or point it at a new file to calibrate again.");
        }

        var missing = table.Missing(plan);
        if (missing.Count > 0)
        {
            throw new StageInputException(
                $"Calibration cache {uri} has no range for {missing.Count} tensor(s) this build quantises (e.g. '{missing[0]}'); " +
                "layers_precision changed since it was made. Point cal_cache_file at a new file to calibrate again.");
        }

        return table;
    }

    private static List<CalibrationBatch> CalibrationBatches(IImageSource images, IReadOnlyList<int> indices, int batchSize, bool fixedBatch, SourceModel source)
    {
        var batches = new List<CalibrationBatch>();
        for (var start = 0; start < indices.Count; start += batchSize)
        {
            var chunk = indices.Skip(start).Take(batchSize).ToList();
            if (fixedBatch)
            {
                // A fixed-batch model takes only full batches: the last one repeats its images.
                for (var i = 0; chunk.Count < batchSize; i++)
                {
                    chunk.Add(chunk[i]);
                }
            }

            var data = ImageSources.Batch(images, chunk, source.Preprocessor);
            batches.Add(new CalibrationBatch(data, [chunk.Count, source.Profile.Channels, source.Profile.Height, source.Profile.Width]));
        }

        return batches;
    }

    private Verification VerificationImages(Job job, SourceModel source, IImageSource? images, SampleSplit? split, QuantizationResult? quantization)
    {
        var count = job.Host.VerificationImages;
        if (images is null || split is null)
        {
            var synthetic = new SyntheticImageSource(count, source.Profile.Width, source.Profile.Height);
            logger.LogWarning("The job has no images; the artifact is checked on {Description}", synthetic.Description);
            return new Verification(synthetic, [.. Enumerable.Range(0, count)], count, synthetic.Description, HeldOut: true, OwnsSource: true);
        }

        var description = quantization is { Summary.FromCache: false }
            ? $"{split.Verification.Count} image(s) of {images.Description}{(split.HeldOut ? ", not used for calibration" : ", also used for calibration")}"
            : $"{split.Verification.Count} image(s) of {images.Description}";
        return new Verification(images, split.Verification, split.Verification.Count, description, split.HeldOut, OwnsSource: false);
    }

    /// <summary>Runs a model on <paramref name="count"/> pre-processed images in batches of the profile's opt size and returns the embeddings.</summary>
    private static float[] RunOnnx(string modelPath, float[] input, int count, SourceModel source, int threads)
    {
        using var runner = new OnnxModelRunner(modelPath, threads);
        var size = source.ImageFloats;
        var d = source.EmbeddingDimension;
        var batch = source.DynamicBatch ? Math.Max(1, source.Profile.OptBatch) : source.Profile.MinBatch;
        var embeddings = new float[count * d];
        for (var start = 0; start < count; start += batch)
        {
            var rows = Math.Min(batch, count - start);
            var fed = source.DynamicBatch ? rows : batch;
            var chunk = Repeat(input.AsSpan(start * size, rows * size).ToArray(), rows, fed, size);
            var output = runner.Run(chunk, [fed, source.Profile.Channels, source.Profile.Height, source.Profile.Width])
                .Single(o => o.Name == source.OutputName);
            if (output.Data.Length != fed * d)
            {
                throw new StageInputException($"Output '{source.OutputName}' of {modelPath} has shape [{string.Join(", ", output.Shape)}]; expected [{fed}, {d}].");
            }

            output.Data.AsSpan(0, rows * d).CopyTo(embeddings.AsSpan(start * d));
        }

        return embeddings;
    }

    /// <summary>Runs ONNX Runtime work off the job's thread; a model it rejects fails the job naming what was being done.</summary>
    private static async Task<T> OnnxRuntimeStepAsync<T>(Func<T> work, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(work, cancellationToken);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException exception)
        {
            throw new StageInputException($"ONNX Runtime could not {what}: {exception.Message}", exception);
        }
    }

    /// <summary>The first <paramref name="count"/> images of <paramref name="input"/> repeated cyclically up to <paramref name="batch"/> images.</summary>
    private static float[] Repeat(float[] input, int count, int batch, int imageFloats)
    {
        if (batch == count)
        {
            return input.Length == count * imageFloats ? input : input[..(count * imageFloats)];
        }

        var result = new float[batch * imageFloats];
        for (var i = 0; i < batch; i++)
        {
            input.AsSpan(i % count * imageFloats, imageFloats).CopyTo(result.AsSpan(i * imageFloats));
        }

        return result;
    }

    private async Task<(string LocalPath, Uri? SharedUri)> FetchTimingCacheAsync(Job job, CancellationToken cancellationToken)
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

    private static int Levenshtein(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    private sealed class LatestProgress : IProgress<double>
    {
        private double _value;

        public double Value => Volatile.Read(ref _value);

        public void Report(double value) => Volatile.Write(ref _value, value);
    }

    private sealed class Job(GenerateEngine command, StageContext context, EngineSettings settings, EngineGenerationOptions host, string work)
    {
        public GenerateEngine Command => command;

        public EngineSettings Settings => settings;

        public EngineGenerationOptions Host => host;

        public string Work => work;

        public string Downloads => Path.Combine(context.ScratchDirectory, "downloads");

        public Uri Output(string name) => command.OutputUri.Append(name);

        public Task ReportAsync(double fraction, string message, CancellationToken cancellationToken) =>
            context.ReportAsync(new StageProgress(fraction, message), cancellationToken);

        public Task ReportNowAsync(double fraction, string message, CancellationToken cancellationToken) =>
            context.ReportNowAsync(new StageProgress(fraction, message), cancellationToken);
    }

    private sealed record SourceModel(Uri OnnxUri, string ModelPath, string Sha256, ModelProto Model, ModelMetadata Metadata, string InputName,
        string OutputName, ShapeProfile Profile)
    {
        public required EngineSource Description { get; init; }

        public ImagePreprocessor Preprocessor { get; } = new(Metadata.Preprocessing);

        public int ImageFloats => Profile.Channels * Profile.Height * Profile.Width;

        public int EmbeddingDimension => Metadata.EmbeddingDimension;

        public bool DynamicBatch => Model.Graph!.Input.First(i => i.Name == InputName).Type!.TensorType!.Shape!.Dim[0].DimValue is null or <= 0;

        public EngineProfile Manifest => new(InputName, Profile.MinBatch, Profile.OptBatch, Profile.MaxBatch, Profile.Height, Profile.Width);
    }

    private sealed record QuantizationResult(string QdqModelPath, string CachePath, CalibrationSummary Summary);

    private sealed record Verification(IImageSource Source, IReadOnlyList<int> Indices, int Count, string Description, bool HeldOut, bool OwnsSource) : IDisposable
    {
        public void Dispose()
        {
            if (OwnsSource)
            {
                Source.Dispose();
            }
        }
    }
}

/// <summary>File names in an engine generation job's output folder.</summary>
public static class EngineArtifacts
{
    /// <summary>The export's <c>model.json</c> with <c>onnx_file</c> naming the ONNX model beside it.</summary>
    public const string ModelMetadata = "model.json";

    /// <summary>target onnxruntime: ONNX Runtime's optimised model, the deploy artifact.</summary>
    public const string OnnxRuntimeModel = "model.ort.onnx";

    /// <summary>target tensorrt: the serialised engine (unless <c>gen_trt_engine.trt_engine</c> puts it elsewhere).</summary>
    public const string Engine = "model.engine";

    /// <summary>target tensorrt, fp32/fp16: the ONNX model the engine was built from.</summary>
    public const string SourceModel = "model.onnx";

    /// <summary>int8: the explicitly quantised (Q/DQ) ONNX model, input to TensorRT and to ONNX Runtime.</summary>
    public const string QdqModel = "model.int8.onnx";

    /// <summary>int8: activation ranges, tensor → {min, max, amax}.</summary>
    public const string CalibrationCache = "calibration.json";

    public const string BuildLog = "trtexec_build.log";

    public const string VerifyLog = "trtexec_verify.log";

    public const string TimingCache = "timing.cache";
}
