using Microsoft.Extensions.Logging;

namespace NvDinoPipeline.EngineGeneration.OnnxRuntime;

/// <summary>The <c>onnxruntime</c> target: ONNX Runtime's optimised model of the (Q/DQ) ONNX model, checked against fp32.</summary>
internal sealed class OnnxRuntimeTarget(TimeProvider clock, ILogger logger)
{
    public async Task<BuiltArtifact> BuildAsync(EngineJob job, SourceModel source, QuantizationResult? quantization, string deployOnnx,
        Verification verification, float[] verificationInput, float[] reference, CancellationToken cancellationToken)
    {
        var level = job.Host.OnnxRuntimeOptimization;
        await job.ReportAsync(0.7, $"optimising the model with ONNX Runtime ({level})", cancellationToken);
        var artifactPath = Path.Combine(job.Work, EngineArtifacts.OnnxRuntimeModel);
        var files = await OnnxRuns.StepAsync(() => OnnxRuntimeArtifact.Write(deployOnnx, artifactPath, OnnxRuntimeArtifact.ParseLevel(level), job.Host.IntraOpThreads),
            $"optimise {Path.GetFileName(deployOnnx)} (from {source.OnnxUri})", cancellationToken);

        await job.ReportAsync(0.85, "checking the artifact against ONNX Runtime fp32", cancellationToken);
        var actual = await OnnxRuns.StepAsync(() => OnnxRuns.Embed(artifactPath, verificationInput, verification.Count, source, job.Host.IntraOpThreads),
            $"run its optimised {Path.GetFileName(artifactPath)}", cancellationToken);
        var fidelity = FidelityCheck.Judge(job, verification, reference, actual, source.EmbeddingDimension, logger);

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
        return new BuiltArtifact(manifest, artifactUri, uploads, []) { MetadataOnnxFile = manifest.OnnxFile };
    }
}
