using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NvDinoPipeline.Contracts;
using NvDinoPipeline.Datasets.Images;
using NvDinoPipeline.EngineGeneration.OnnxRuntime;
using NvDinoPipeline.EngineGeneration.TensorRt;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.EngineGeneration;

/// <summary>
/// One engine generation job: reads the exported model, calibrates and quantises it for int8, builds the deploy
/// artifact for the target (a TensorRT engine through trtexec with its EP-context model, or ONNX Runtime's optimised
/// model), checks the artifact's embeddings against ONNX Runtime fp32 on sample images, and publishes it with its
/// <c>engine.json</c>.
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
            ? new TensorRtTarget(new TensorRtEngineBuilder(locator.Locate(), host.TrtexecTimeout, logger), store, clock, logger)
            : null;

        var job = new EngineJob(command, context, settings, host, Path.Combine(context.ScratchDirectory, "work"));
        Directory.CreateDirectory(job.Work);
        Directory.CreateDirectory(job.Downloads);
        logger.LogInformation("Generating a {Target} {Precision} artifact for pipeline {PipelineId} job {JobId}",
            settings.Target, settings.Precision, command.PipelineId, command.JobId);

        await job.ReportAsync(0.01, "reading the exported model", cancellationToken);
        var source = await new SourceModelLoader(store).LoadAsync(job, cancellationToken);

        using var images = await CalibrationImages.OpenAsync(store, settings.Calibration.ImageDirectories, command.CalibrationDatasetUri,
            job.Downloads, cancellationToken);

        // The same draw whether or not a calibration cache is reused, so its verification images are the ones the
        // calibrating job held out (for the same dataset).
        var split = images is null
            ? null
            : SampleSplit.Create(images.Count, settings.IsInt8 ? settings.Calibration.BatchSize * settings.Calibration.Batches : 0, host.VerificationImages);
        var int8 = new Int8Calibration(store, clock, logger);
        var quantization = settings.IsInt8 ? await int8.QuantizeAsync(job, source, images, split, cancellationToken) : null;

        using var verification = VerificationImages(job, source, images, split, quantization);
        await job.ReportAsync(0.62, $"computing reference embeddings on {verification.Count} image(s) with ONNX Runtime fp32", cancellationToken);
        var verificationInput = CalibrationImages.Batch(verification.Source, verification.Indices, source.Preprocessor);
        var reference = await OnnxRuns.StepAsync(() => OnnxRuns.Embed(source.ModelPath, verificationInput, verification.Count, source, host.IntraOpThreads),
            $"run {source.OnnxUri}", cancellationToken);
        if (quantization is not null)
        {
            quantization = await int8.FallBackAsync(job, source, quantization, verification, verificationInput, reference, cancellationToken);
        }

        var deployOnnx = quantization?.QdqModelPath ?? source.ModelPath;

        var built = tensorRt is null
            ? await new OnnxRuntimeTarget(clock, logger).BuildAsync(job, source, quantization, deployOnnx, verification, verificationInput, reference, cancellationToken)
            : await tensorRt.BuildAsync(job, source, quantization, deployOnnx, verification, verificationInput, reference, cancellationToken);
        return await new ArtifactPublisher(store, logger).PublishAsync(job, source, quantization, built, cancellationToken);
    }

    private Verification VerificationImages(EngineJob job, SourceModel source, IImageSource? images, SampleSplit? split, QuantizationResult? quantization)
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

}
