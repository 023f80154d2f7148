using System.Globalization;
using Microsoft.Extensions.Logging;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>The files one target's build leaves for upload, keyed by artifact name.</summary>
internal sealed record BuiltArtifact(EngineManifest Manifest, Uri ArtifactUri, Dictionary<string, (Uri Uri, string Path)> Uploads, Dictionary<string, double> Metrics)
{
    /// <summary>What the published <c>model.json</c> names as the ONNX file that travels with the artifact.</summary>
    public required string MetadataOnnxFile { get; init; }
}

/// <summary>
/// Uploads a built artifact with its report, then completes the job, or fails it when the artifact missed its
/// fidelity bound: the report (<c>engine.json</c>, calibration cache, logs) is still uploaded so the figures can be inspected.
/// </summary>
internal sealed class ArtifactPublisher(IArtifactStore store, ILogger logger)
{
    public async Task<StageResult<EngineGenerated>> PublishAsync(EngineJob job, SourceModel source, QuantizationResult? quantization, BuiltArtifact built,
        CancellationToken cancellationToken)
    {
        var (manifest, artifactUri, uploads, metrics) = (built.Manifest, built.ArtifactUri, built.Uploads, built.Metrics);
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
            throw new StageInputException(FidelityCheck.Failure(job, manifest, quantization, job.Output(EngineManifest.FileName)));
        }

        foreach (var (key, (uri, path)) in uploads)
        {
            await PutAsync(key, uri, path);
        }

        // The export's metadata, now naming the ONNX file that travels with this artifact.
        var metadata = source.Metadata with { OnnxFile = built.MetadataOnnxFile };
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
        return new StageResult<EngineGenerated>(completed, artifacts, metrics)
        {
            Summary = string.Create(CultureInfo.InvariantCulture,
                $"{manifest.Target} {manifest.Precision} artifact, batch {profile.MinBatch}-{profile.MaxBatch}; against the ONNX model on {fidelity.ImageCount} images: mean cosine {fidelity.MeanCosine:F5}, min {fidelity.MinCosine:F5}"),
        };
    }
}
