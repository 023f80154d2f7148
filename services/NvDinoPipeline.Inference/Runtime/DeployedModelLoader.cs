using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Deployment;
using ModelMetadata = NvDinoPipeline.Deployment.ModelMetadata;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Storage;

namespace NvDinoPipeline.Inference;

/// <summary>A deployed model as the engine stage describes it.</summary>
/// <param name="Target"><c>onnxruntime</c> or <c>tensorrt</c>.</param>
/// <param name="ArtifactUri">The ONNX Runtime model, or the TensorRT engine.</param>
/// <param name="ModelMetadataUri">The export's <c>model.json</c>; its <c>onnx_file</c> is relative to it.</param>
public sealed record DeployedModelReference(string Target, Uri ArtifactUri, Uri ModelMetadataUri)
{
    public const string OnnxRuntimeTarget = "onnxruntime";
    public const string TensorRtTarget = "tensorrt";
}

/// <summary>
/// Fetches a deployed model and its metadata from the artifact store and opens it on the best execution
/// provider: TensorRT, then CUDA, then CPU (or the one asked for).
/// A <c>tensorrt</c> target runs through ONNX Runtime's TensorRT provider, which builds (and caches) its own
/// engine from the exported ONNX model: ONNX Runtime cannot load a bare serialised engine file.
/// </summary>
public sealed class DeployedModelLoader(IArtifactStore store, IOptions<InferenceOptions> options, ILogger<DeployedModelLoader> logger)
{
    /// <param name="requestedProvider">The spec's <c>inference.execution_provider</c>; <c>Inference:ExecutionProvider</c> overrides it.</param>
    /// <param name="scratchDirectory">Where downloads (from s3://) and the TensorRT engine cache go.</param>
    /// <exception cref="StageInputException">The metadata or model is missing, unreadable or does not match.</exception>
    /// <exception cref="StageUnavailableException">The target or provider needs what this host lacks.</exception>
    public async Task<EmbeddingModel> LoadAsync(DeployedModelReference model, string requestedProvider, string scratchDirectory,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        model = model with { ArtifactUri = LocationForm.Absolute(model.ArtifactUri), ModelMetadataUri = LocationForm.Absolute(model.ModelMetadataUri) };
        var settings = options.Value;
        var metadata = await ReadMetadataAsync(model.ModelMetadataUri, cancellationToken);
        var requested = settings.ExecutionProvider is { Length: > 0 } hostChoice ? hostChoice : requestedProvider;
        ExecutionProviderChoice provider;
        try
        {
            provider = ExecutionProviders.Select(requested, ExecutionProviders.Available());
        }
        catch (ExecutionProviderUnavailableException exception)
        {
            throw new StageUnavailableException(exception.Message, exception);
        }
        catch (ArgumentException exception)
        {
            throw new StageInputException($"inference.execution_provider: {exception.Message}", exception);
        }

        Uri modelUri;
        switch (model.Target)
        {
            case DeployedModelReference.OnnxRuntimeTarget:
                modelUri = model.ArtifactUri;
                break;
            case DeployedModelReference.TensorRtTarget:
                modelUri = new Uri(model.ModelMetadataUri, metadata.OnnxFile);
                if (provider.Kind != ExecutionProviderKind.TensorRt && requested == ExecutionProviders.Auto)
                {
                    throw new StageUnavailableException(
                        $"The deployed model is a TensorRT engine ({model.ArtifactUri}); this host runs TensorRT through ONNX Runtime's "
                        + $"{ExecutionProviders.TensorRtProvider}, which this ONNX Runtime build lacks (it has {string.Join(", ", provider.Available)}). "
                        + "Run inference on a host with TensorRT and the GPU build of ONNX Runtime, or set inference.execution_provider=cuda or cpu "
                        + "to run the exported ONNX model without the engine.");
                }
                if (provider.Kind != ExecutionProviderKind.TensorRt)
                {
                    logger.LogWarning("The TensorRT engine {EngineUri} is not used: inference.execution_provider is {Provider}, so the exported ONNX model {OnnxUri} runs instead",
                        model.ArtifactUri, requested, modelUri);
                }
                break;
            default:
                throw new StageInputException($"Deploy target '{model.Target}' is unknown; the inference worker runs '{DeployedModelReference.OnnxRuntimeTarget}' and '{DeployedModelReference.TensorRtTarget}' models.");
        }

        var localPath = await FetchModelAsync(modelUri, scratchDirectory, cancellationToken);
        try
        {
            var loaded = EmbeddingModel.Load(localPath, metadata, provider, new EmbeddingModelOptions
            {
                IntraOpThreads = settings.IntraOpThreads,
                DeviceId = settings.DeviceId,
                // Threads that spin between operators only steal cores from pre-processing running beside them.
                AllowSpinning = !settings.Overlaps(provider.Kind),
                TensorRtCacheDirectory = provider.Kind == ExecutionProviderKind.TensorRt ? Path.Combine(scratchDirectory, "tensorrt-cache") : null,
            });
            if (provider.Kind == ExecutionProviderKind.Cpu)
            {
                logger.LogWarning("Model {ModelUri} runs on the CPU ({Reason})", modelUri, provider.Reason);
            }
            else
            {
                logger.LogInformation("Model {ModelUri} runs on {Provider} ({Reason})", modelUri, ExecutionProviders.ProviderOf(provider.Kind), provider.Reason);
            }
            return loaded;
        }
        catch (Exception exception) when (exception is InvalidDataException or OnnxRuntimeException)
        {
            throw new StageInputException($"Model {modelUri} cannot be run: {exception.Message}", exception);
        }
    }

    public async Task<ModelMetadata> ReadMetadataAsync(Uri metadataUri, CancellationToken cancellationToken)
    {
        string json;
        try
        {
            await using var stream = await store.OpenReadAsync(metadataUri, cancellationToken);
            using var reader = new StreamReader(stream);
            json = await reader.ReadToEndAsync(cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new StageInputException($"Model metadata {metadataUri} does not exist.", exception);
        }
        try
        {
            return ModelMetadata.FromJson(json, metadataUri.ToString());
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    /// <summary>The model as a local file, with its external weights (<c>&lt;model&gt;.data</c>) beside it when it has them.</summary>
    private async Task<string> FetchModelAsync(Uri modelUri, string scratchDirectory, CancellationToken cancellationToken)
    {
        string path;
        try
        {
            path = await store.GetLocalPathAsync(modelUri, scratchDirectory, cancellationToken);
        }
        catch (ArtifactNotFoundException exception)
        {
            throw new StageInputException($"Model {modelUri} does not exist.", exception);
        }
        var externalData = new Uri(modelUri.AbsoluteUri + ".data");
        if (await store.GetInfoAsync(externalData, cancellationToken) is not null)
        {
            await store.GetLocalPathAsync(externalData, scratchDirectory, cancellationToken);
        }
        return path;
    }
}
