using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Checkpoints;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Export.Checkpoints;
using NvDinoPipeline.Export.Validation;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Model;
using NvDinoPipeline.Onnx;
using ParityReport = NvDinoPipeline.Deployment.ParityReport;
using NvDinoPipeline.Onnx.Proto;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Export;

/// <summary>
/// Exports the backbone of a training or distillation job to ONNX (TAO's <c>nvdinov2 export</c>): picks the checkpoint,
/// writes <c>model.onnx</c> (plus <c>model.onnx.data</c> above protobuf's size limit) and <c>model.json</c>, and
/// publishes them only after ONNX Runtime reproduced the TorchSharp model on the job's images.
/// </summary>
public sealed class ExportRunner(IArtifactStore store, IOptions<ExportOptions> options, ILogger<ExportRunner> logger)
    : IStageRunner<ExportModel, ModelExported>
{
    public const string OnnxModelArtifact = "onnx_model";
    public const string ExternalDataArtifact = "onnx_external_data";
    public const string MetadataArtifact = "metadata";

    public async Task<StageResult<ModelExported>> RunAsync(ExportModel command, StageContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(context);
        var limits = options.Value;
        var settings = ExportSettings.Read(context.Spec, command.SourceStage);
        var (onnxUri, metadataUri) = OutputLocations(context.OutputUri, settings);
        var total = Stopwatch.StartNew();

        await context.ReportNowAsync(new StageProgress(0.0, $"locating the checkpoint ({settings.Checkpoint})"), cancellationToken);
        var checkpoint = await new CheckpointLocator(store, logger).LocateAsync(command, settings.Checkpoint, context.ScratchDirectory, cancellationToken);
        var images = await ValidationImages.LoadAsync(store, command.ValidationDatasetUri,
            settings.DynamicBatch ? limits.ValidationBatchSize : settings.BatchSize, context.ScratchDirectory, logger, cancellationToken);

        await context.ReportNowAsync(new StageProgress(0.1, $"loading {checkpoint.Uri}"), cancellationToken);
        var preprocessing = new Preprocessing { Height = settings.InputHeight, Width = settings.InputWidth };
        BackboneConfig config;
        IReadOnlyList<ParityReference> references;
        Dictionary<string, NamedWeight> weights;
        using (var model = BackboneLoader.Load(checkpoint, command.SourceStage, settings))
        {
            config = model.Config;
            CheckInputSize(settings, config);
            var cases = ParityValidator.Plan(settings, config.PatchSize, limits.ValidationBatchSize);
            logger.LogInformation("Exporting a {Backbone} backbone; parity checks on {ImageSource}: {Cases}",
                BackboneLoader.Describe(config), images.Source, string.Join(", ", cases));
            references = ParityValidator.ComputeReferences(model, cases, images.Images, preprocessing, settings.IncludePatchTokens, cancellationToken);
            weights = BackboneOnnxExport.Weights(model);
        }

        await context.ReportNowAsync(new StageProgress(0.4, "writing the ONNX model"), cancellationToken);
        var exportFolder = Path.Combine(context.ScratchDirectory, "export");
        if (Directory.Exists(exportFolder))
        {
            Directory.Delete(exportFolder, recursive: true);
        }
        Directory.CreateDirectory(exportFolder);
        OnnxSaveResult saved;
        double exportSeconds;
        ParityReport parity;
        int warnings;
        var artifacts = new Dictionary<string, Uri>(StringComparer.Ordinal);
        try
        {
            var exportClock = Stopwatch.StartNew();
            saved = Write(config, weights, settings, Path.Combine(exportFolder, FileName(onnxUri)), checkpoint,
                new OnnxSaveOptions { ExternalDataThresholdBytes = limits.ExternalDataThresholdBytes });
            exportSeconds = exportClock.Elapsed.TotalSeconds;
            // The TorchSharp model and the weight copies are gone; collect before ONNX Runtime maps its own copy (vit_g is 4.5 GB).
            GC.Collect();
            GC.WaitForPendingFinalizers();

            await context.ReportNowAsync(new StageProgress(0.6, "checking ONNX Runtime against TorchSharp"), cancellationToken);
            using (var runner = new OnnxModelRunner(saved.ModelPath, limits.OnnxRuntimeThreads))
            {
                warnings = runner.CreationWarnings?.Count ?? 0;
                foreach (var warning in runner.CreationWarnings ?? [])
                {
                    logger.LogWarning("ONNX Runtime warned while loading the exported model: {Warning}", warning);
                }
                parity = ParityValidator.Compare(runner, references, config.EmbedDim, cancellationToken);
            }
            var figures = ParityValidator.Describe(parity, limits.MaxAbsError, limits.MinCosine);
            if (!ParityValidator.IsWithin(parity, limits.MaxAbsError, limits.MinCosine))
            {
                throw new ExportParityException(string.Create(CultureInfo.InvariantCulture,
                    $"The ONNX export of checkpoint '{checkpoint.Uri}' does not reproduce the TorchSharp model within max |Δ| {limits.MaxAbsError:G3} " +
                    $"and cosine {limits.MinCosine} (fp32): {figures}. Nothing was published."), parity);
            }
            logger.LogInformation("Exported model matches the TorchSharp backbone: {Figures}", figures);

            await context.ReportNowAsync(new StageProgress(0.8, $"uploading to {onnxUri}"), cancellationToken);
            var metadata = Describe(settings, config, preprocessing, parity, checkpoint, FileName(onnxUri));
            var metadataPath = Path.Combine(exportFolder, FileName(metadataUri));
            await File.WriteAllTextAsync(metadataPath, metadata.ToJson(), cancellationToken);
            if (saved.ExternalDataPath is { } dataPath)
            {
                // ONNX resolves the external data file by name, relative to the model: keep it beside model.onnx.
                var dataUri = new Uri(onnxUri, Uri.EscapeDataString(Path.GetFileName(dataPath)));
                await store.PutFileAsync(dataUri, dataPath, cancellationToken);
                artifacts[ExternalDataArtifact] = dataUri;
            }
            // The metadata goes last: once it exists, the model it describes is complete.
            await store.PutFileAsync(onnxUri, saved.ModelPath, cancellationToken);
            await store.PutFileAsync(metadataUri, metadataPath, cancellationToken);
            artifacts[OnnxModelArtifact] = onnxUri;
            artifacts[MetadataArtifact] = metadataUri;
        }
        finally
        {
            // Published or rejected, the local copy (4.5 GB for vit_g) does not stay in the job's scratch folder.
            Directory.Delete(exportFolder, recursive: true);
        }

        logger.LogInformation("Job {JobId} of pipeline {PipelineId} exported {OnnxUri} ({Bytes} bytes) in {Seconds:F1} s",
            command.JobId, command.PipelineId, onnxUri, saved.ModelBytes + saved.ExternalDataBytes, total.Elapsed.TotalSeconds);
        await context.ReportNowAsync(new StageProgress(1.0, $"exported {onnxUri}"), cancellationToken);
        var completed = new ModelExported
        {
            PipelineId = command.PipelineId,
            JobId = command.JobId,
            ParentJobId = command.ParentJobId,
            OnnxModelUri = onnxUri,
            MetadataUri = metadataUri,
            MaxAbsError = parity.MaxAbsError,
            MinCosine = parity.MinCosine,
        };
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal)
        {
            ["max_abs_error"] = parity.MaxAbsError,
            ["min_cosine"] = parity.MinCosine,
            ["export_seconds"] = exportSeconds,
            ["total_seconds"] = total.Elapsed.TotalSeconds,
            ["onnx_bytes"] = saved.ModelBytes + saved.ExternalDataBytes,
            ["parameters"] = config.ParameterCount(),
            ["onnx_runtime_warnings"] = warnings,
        };
        return new StageResult<ModelExported>(completed, artifacts, metrics)
        {
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"exported {config.ParameterCount()} parameters to ONNX ({(saved.ModelBytes + saved.ExternalDataBytes) / 1e6:F1} MB); parity with the checkpoint: min cosine {parity.MinCosine:F6}, max abs error {parity.MaxAbsError:G3}"),
        };
    }

    /// <summary>
    /// Where the model and its metadata go: <c>export.onnx_file</c>, a path inside the job folder (a job writes nowhere
    /// else), by default <c>&lt;job&gt;/model.onnx</c>; the metadata is the same name with <c>.json</c>.
    /// </summary>
    public static (Uri Onnx, Uri Metadata) OutputLocations(Uri jobFolder, ExportSettings settings)
    {
        ArgumentNullException.ThrowIfNull(jobFolder);
        ArgumentNullException.ThrowIfNull(settings);
        var file = settings.OnnxFile ?? ExportSettings.DefaultOnnxFile;
        Uri onnx;
        try
        {
            onnx = ArtifactUriExtensions.TryParseLocation(file, out _)
                ? throw new ArgumentException("an absolute location", nameof(settings))
                : jobFolder.AsFolder().Append(file);
        }
        catch (ArgumentException exception)
        {
            throw new StageInputException(
                $"export.onnx_file '{file}' is not a path inside the job's folder: a job writes only under its own folder, so give a relative path such as 'model.onnx'.",
                exception);
        }
        var name = FileName(onnx);
        if (!name.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) || name.Length == ".onnx".Length)
        {
            throw new StageInputException($"export.onnx_file '{file}' must name a .onnx file.");
        }
        return (onnx, new Uri(onnx, Uri.EscapeDataString(Path.ChangeExtension(name, ".json"))));
    }

    private static OnnxSaveResult Write(BackboneConfig config, Dictionary<string, NamedWeight> weights, ExportSettings settings, string path,
        SelectedCheckpoint checkpoint, OnnxSaveOptions saveOptions)
    {
        ModelProto model;
        try
        {
            model = VitOnnxBuilder.Build(BackboneOnnxExport.GraphConfig(config), weights, BackboneOnnxExport.Options(settings));
        }
        catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
        {
            throw new StageInputException($"Checkpoint '{checkpoint.Uri}' ({checkpoint.Describe()}) cannot be exported: {exception.Message}", exception);
        }
        finally
        {
            // The graph holds its own (transposed) copy of every weight.
            weights.Clear();
        }
        return OnnxModelWriter.Save(model, path, saveOptions);
    }

    private static void CheckInputSize(ExportSettings settings, BackboneConfig config)
    {
        foreach (var (key, side) in new[] { ("export.input_height", settings.InputHeight), ("export.input_width", settings.InputWidth) })
        {
            if (side % config.PatchSize != 0)
            {
                var below = Math.Max(config.PatchSize, side / config.PatchSize * config.PatchSize);
                throw new StageInputException(
                    $"{key} {side} is not a multiple of the backbone's patch size {config.PatchSize}; the nearest valid values are {below} and {below + config.PatchSize}.");
            }
        }
    }

    private static ModelMetadata Describe(ExportSettings settings, BackboneConfig config, Preprocessing preprocessing, ParityReport parity,
        SelectedCheckpoint checkpoint, string onnxFile)
    {
        long batch = settings.DynamicBatch ? -1 : settings.BatchSize;
        long height = settings.DynamicHeightWidth ? -1 : settings.InputHeight;
        long width = settings.DynamicHeightWidth ? -1 : settings.InputWidth;
        var outputs = new List<TensorDescription> { new(VitOnnxBuilder.OutputName, [batch, config.EmbedDim]) };
        if (settings.IncludePatchTokens)
        {
            long patches = settings.DynamicHeightWidth ? -1 : (long)(settings.InputHeight / config.PatchSize) * (settings.InputWidth / config.PatchSize);
            outputs.Add(new TensorDescription(VitOnnxBuilder.PatchTokensName, [batch, patches, config.EmbedDim]));
        }
        var selection = checkpoint.Selection.Kind switch
        {
            CheckpointSelectionKind.Latest => "latest",
            CheckpointSelectionKind.Best => string.Create(CultureInfo.InvariantCulture, $"best (epoch {checkpoint.Epoch})"),
            CheckpointSelectionKind.Epoch => string.Create(CultureInfo.InvariantCulture, $"epoch {checkpoint.Epoch}"),
            _ => checkpoint.Selection.Path,
        };
        return new ModelMetadata
        {
            OnnxFile = onnxFile,
            Opset = settings.Opset,
            Input = new TensorDescription(VitOnnxBuilder.InputName, [batch, config.InChannels, height, width]),
            Outputs = outputs,
            DynamicBatch = settings.DynamicBatch,
            DynamicHeightWidth = settings.DynamicHeightWidth,
            Preprocessing = preprocessing,
            Backbone = new BackboneDescription
            {
                Type = BackboneLoader.NameOf(config),
                PatchSize = config.PatchSize,
                EmbedDim = config.EmbedDim,
                Depth = config.Depth,
                NumHeads = config.NumHeads,
                NumRegisterTokens = config.NumRegisterTokens,
                Parameters = config.ParameterCount(),
                TrainedImageSize = config.ImgSize,
                FfnLayer = config.FfnLayer == FfnLayer.SwiGlu ? "swiglu" : "mlp",
                MlpRatio = config.MlpRatio,
                LayerScale = config.LayerScaleInit is not null,
            },
            Parity = parity,
            Source = new SourceCheckpoint(checkpoint.Uri.AbsoluteUri, checkpoint.Sha256, selection),
        };
    }

    private static string FileName(Uri uri) => Uri.UnescapeDataString(uri.AbsolutePath[(uri.AbsolutePath.LastIndexOf('/') + 1)..]);
}
