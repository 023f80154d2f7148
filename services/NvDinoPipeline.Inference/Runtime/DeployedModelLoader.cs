using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Hosting.Workers;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.EpContext;
using NvDinoPipeline.Storage;
using ModelMetadata = NvDinoPipeline.Deployment.ModelMetadata;

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

/// <summary>The file a deployed model runs from, on which provider; <see cref="Engine"/> is set when it is a TensorRT engine's EP-context model.</summary>
public sealed record ResolvedModel(string LocalPath, Uri ModelUri, ModelMetadata Metadata, ExecutionProviderChoice Provider, TensorRtEngineContext? Engine);

/// <summary>
/// Fetches a deployed model and its metadata from the artifact store and opens it on the best execution
/// provider: TensorRT, then CUDA, then CPU (or the one asked for).
/// A <c>tensorrt</c> target runs the engine the engine generation stage built: its EP-context model
/// (<c>model.json</c>'s <c>onnx_file</c>) makes ONNX Runtime's TensorRT provider deserialise that engine instead of
/// building one, once the engine is checked against this host's TensorRT and GPU and against the SHA-256 the
/// context recorded. Asked to run on CUDA or the CPU, the ONNX model the engine was built from runs instead.
/// </summary>
public sealed class DeployedModelLoader(IArtifactStore store, IInferenceHardware hardware, IOptions<InferenceOptions> options,
    ILogger<DeployedModelLoader> logger)
{
    /// <param name="requestedProvider">The spec's <c>inference.execution_provider</c>; <c>Inference:ExecutionProvider</c> overrides it.</param>
    /// <param name="scratchDirectory">Where downloads (from s3://) and the engine's folder go.</param>
    /// <exception cref="StageInputException">The metadata or model is missing, unreadable or does not match.</exception>
    /// <exception cref="StageUnavailableException">The target or provider needs what this host lacks, or the engine was built for another GPU or TensorRT.</exception>
    public async Task<EmbeddingModel> LoadAsync(DeployedModelReference model, string requestedProvider, string scratchDirectory,
        CancellationToken cancellationToken)
    {
        var resolved = await ResolveAsync(model, requestedProvider, scratchDirectory, cancellationToken);
        var settings = options.Value;
        var provider = resolved.Provider;
        try
        {
            var loaded = EmbeddingModel.Load(resolved.LocalPath, resolved.Metadata, provider, new EmbeddingModelOptions
            {
                IntraOpThreads = settings.IntraOpThreads,
                DeviceId = settings.DeviceId,
                // Threads that spin between operators only steal cores from pre-processing running beside them.
                AllowSpinning = !settings.Overlaps(provider.Kind),
                Engine = resolved.Engine,
                // An onnxruntime artifact on the TensorRT provider gets an engine built at load; the cache keeps it for the next load.
                TensorRtCacheDirectory = provider.Kind == ExecutionProviderKind.TensorRt ? Path.Combine(scratchDirectory, "tensorrt-cache") : null,
            });
            if (provider.Kind == ExecutionProviderKind.Cpu)
            {
                logger.LogWarning("Model {ModelUri} runs on the CPU ({Reason})", resolved.ModelUri, provider.Reason);
            }
            else if (resolved.Engine is { } engine)
            {
                logger.LogInformation("TensorRT engine {EngineUri} ({Precision}, TensorRT {TensorRtVersion}, {Gpu}) runs on {Provider} through {ModelUri}",
                    model.ArtifactUri, engine.Precision, engine.TensorRtVersion, engine.Gpu, ExecutionProviders.ProviderOf(provider.Kind), resolved.ModelUri);
            }
            else
            {
                logger.LogInformation("Model {ModelUri} runs on {Provider} ({Reason})", resolved.ModelUri, ExecutionProviders.ProviderOf(provider.Kind), provider.Reason);
            }
            return loaded;
        }
        catch (Exception exception) when (exception is InvalidDataException or OnnxRuntimeException)
        {
            throw new StageInputException($"Model {resolved.ModelUri} cannot be run: {exception.Message}", exception);
        }
    }

    /// <summary>Chooses the file and provider, fetches what runs into <paramref name="scratchDirectory"/>, and checks a TensorRT engine against this host.</summary>
    public async Task<ResolvedModel> ResolveAsync(DeployedModelReference model, string requestedProvider, string scratchDirectory,
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
            provider = ExecutionProviders.Select(requested, hardware.AvailableProviders());
        }
        catch (ExecutionProviderUnavailableException exception)
        {
            throw new StageUnavailableException(exception.Message, exception);
        }
        catch (ArgumentException exception)
        {
            throw new StageInputException($"inference.execution_provider: {exception.Message}", exception);
        }

        switch (model.Target)
        {
            case DeployedModelReference.OnnxRuntimeTarget:
                return new ResolvedModel(await FetchModelAsync(model.ArtifactUri, scratchDirectory, cancellationToken), model.ArtifactUri, metadata, provider, null);
            case DeployedModelReference.TensorRtTarget:
                if (provider.Kind != ExecutionProviderKind.TensorRt && requested == ExecutionProviders.Auto)
                {
                    throw new StageUnavailableException(
                        $"The deployed model is a TensorRT engine ({model.ArtifactUri}); this host runs TensorRT through ONNX Runtime's "
                        + $"{ExecutionProviders.TensorRtProvider}, which this ONNX Runtime build lacks (it has {string.Join(", ", provider.Available)}). "
                        + "Run inference on a host with TensorRT and the GPU build of ONNX Runtime, or set inference.execution_provider=cuda or cpu "
                        + "to run the exported ONNX model without the engine.");
                }
                return await ResolveEngineAsync(model, metadata, provider, scratchDirectory, cancellationToken);
            default:
                throw new StageInputException($"Deploy target '{model.Target}' is unknown; the inference worker runs '{DeployedModelReference.OnnxRuntimeTarget}' and '{DeployedModelReference.TensorRtTarget}' models.");
        }
    }

    private async Task<ResolvedModel> ResolveEngineAsync(DeployedModelReference model, ModelMetadata metadata, ExecutionProviderChoice provider,
        string scratchDirectory, CancellationToken cancellationToken)
    {
        var contextUri = new Uri(model.ModelMetadataUri, metadata.OnnxFile);
        var contextPath = await FetchModelAsync(contextUri, scratchDirectory, cancellationToken);
        TensorRtEngineContext? engine;
        try
        {
            engine = EpContextModel.Read(OnnxModelReader.Load(contextPath), contextUri.ToString());
        }
        catch (Exception exception) when (exception is InvalidDataException or ProtoBuf.ProtoException or EndOfStreamException)
        {
            throw new StageInputException($"{contextUri} is not a readable ONNX model: {exception.Message}", exception);
        }

        var onTensorRt = provider.Kind == ExecutionProviderKind.TensorRt;
        if (engine is null)
        {
            if (onTensorRt)
            {
                throw new StageInputException(
                    $"The engine generation job of {model.ArtifactUri} left no EP-context model for its engine ({metadata.OnnxFile} is a plain ONNX model), "
                    + "so ONNX Runtime's TensorRT provider would build another engine instead of running this one. Run engine generation again, "
                    + "or set inference.execution_provider=cuda or cpu to run the ONNX model without the engine.");
            }
            logger.LogWarning("The TensorRT engine {EngineUri} is not used: inference.execution_provider is {Provider}, so {OnnxUri} runs instead",
                model.ArtifactUri, provider.Requested, contextUri);
            return new ResolvedModel(contextPath, contextUri, metadata, provider, null);
        }

        if (!onTensorRt)
        {
            var onnxUri = new Uri(contextUri, engine.SourceOnnxFile);
            logger.LogWarning("The TensorRT engine {EngineUri} is not used: inference.execution_provider is {Provider}, so the ONNX model it was built from, {OnnxUri}, runs instead",
                model.ArtifactUri, provider.Requested, onnxUri);
            return new ResolvedModel(await FetchModelAsync(onnxUri, scratchDirectory, cancellationToken), onnxUri, metadata, provider, null);
        }

        var settings = options.Value;
        var host = hardware.TensorRt(settings.DeviceId);
        if (EngineCompatibility.Refusal(engine, host, settings.AllowEngineOnOtherGpuModel) is { } refusal)
        {
            throw new StageUnavailableException(
                $"The TensorRT engine {model.ArtifactUri} cannot run on this host: {refusal}. Run inference where the engine was built for "
                + $"(TensorRT {engine.TensorRtVersion} on {engine.Gpu}), build the engine again on this kind of host, or set "
                + "inference.execution_provider=cuda or cpu to run the ONNX model without the engine.");
        }

        var enginePath = await FetchEngineAsync(model.ArtifactUri, engine, contextUri, scratchDirectory, cancellationToken);
        // ONNX Runtime looks for the engine relative to the EP-context model and refuses paths leading out of its folder:
        // both go into one folder, the engine as a link to the fetched file.
        var folder = Path.Combine(scratchDirectory, "tensorrt-engine");
        Directory.CreateDirectory(folder);
        var localContext = Path.Combine(folder, Path.GetFileName(contextPath));
        File.Copy(contextPath, localContext, overwrite: true);
        var link = Path.Combine(folder, engine.EngineFile);
        Directory.CreateDirectory(Path.GetDirectoryName(link)!);
        File.Delete(link);
        File.CreateSymbolicLink(link, Path.GetFullPath(enginePath));
        return new ResolvedModel(localContext, contextUri, metadata, provider, engine);
    }

    /// <summary>The engine as a local file, checked to be the one the EP-context model was written for.</summary>
    private async Task<string> FetchEngineAsync(Uri engineUri, TensorRtEngineContext engine, Uri contextUri, string scratchDirectory, CancellationToken cancellationToken)
    {
        var info = await store.GetInfoAsync(engineUri, cancellationToken)
            ?? throw new StageInputException($"The TensorRT engine {engineUri} does not exist.");
        var path = await store.GetLocalPathAsync(engineUri, scratchDirectory, cancellationToken);
        var sha256 = info.Sha256;
        if (sha256 is null)
        {
            await using var file = File.OpenRead(path);
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken));
        }
        if (!string.Equals(sha256, engine.EngineSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new StageInputException(
                $"The TensorRT engine {engineUri} (SHA-256 {sha256}) is not the engine {contextUri} was written for (SHA-256 {engine.EngineSha256}): "
                + "it was replaced after engine generation. Run engine generation again.");
        }
        return path;
    }

    public async Task<ModelMetadata> ReadMetadataAsync(Uri metadataUri, CancellationToken cancellationToken)
    {
        try
        {
            return await NvDinoPipeline.Deployment.DeployedFiles.ReadMetadataAsync(store, metadataUri, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }

    private async Task<string> FetchModelAsync(Uri modelUri, string scratchDirectory, CancellationToken cancellationToken)
    {
        try
        {
            return await NvDinoPipeline.Deployment.DeployedFiles.FetchModelAsync(store, modelUri, scratchDirectory, cancellationToken);
        }
        catch (InvalidDataException exception)
        {
            throw new StageInputException(exception.Message, exception);
        }
    }
}
