using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Deployment;
using NvDinoPipeline.Onnx.EpContext;
using ModelMetadata = NvDinoPipeline.Deployment.ModelMetadata;

namespace NvDinoPipeline.Inference;

/// <summary>How an <see cref="EmbeddingModel"/> session is created.</summary>
public sealed record EmbeddingModelOptions
{
    /// <summary>ONNX Runtime threads per operator; 0 uses every core.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>GPU of the TensorRT and CUDA providers.</summary>
    public int DeviceId { get; init; }

    /// <summary>Where the TensorRT provider keeps the engines it builds from a plain ONNX model; null keeps none.</summary>
    public string? TensorRtCacheDirectory { get; init; }

    /// <summary>
    /// Set when the model is an EP-context model over this prebuilt engine: ONNX Runtime's graph optimisations have nothing to do
    /// on its one node, and its TensorRT provider deserialises the engine rather than building one.
    /// </summary>
    public TensorRtEngineContext? Engine { get; init; }

    /// <summary>
    /// Whether ONNX Runtime's idle operator threads spin between operators (its default). Off when other work
    /// (pre-processing the next batch) runs on the same cores beside the model: spinning threads take them.
    /// </summary>
    public bool AllowSpinning { get; init; }
}

/// <summary>
/// An ONNX Runtime session over a deployed embedding model: float32 images [B,3,H,W] in, one embedding
/// [B,D] per image out, written straight into caller-owned buffers (no copies, no per-run allocations).
/// <see cref="Run"/> may be called from several threads at once.
/// </summary>
public sealed class EmbeddingModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    private EmbeddingModel(InferenceSession session, string modelPath, ModelMetadata metadata, ExecutionProviderChoice provider, int? fixedBatch,
        TensorRtEngineContext? engine)
    {
        Engine = engine;
        _session = session;
        ModelPath = modelPath;
        Metadata = metadata;
        ExecutionProvider = provider;
        FixedBatchSize = fixedBatch;
        Preprocessor = new ImagePreprocessor(metadata.Preprocessing);
        Dimension = metadata.EmbeddingDimension;
        _inputNames = [metadata.Input.Name];
        _outputNames = [metadata.Outputs[0].Name];
    }

    public string ModelPath { get; }

    public ModelMetadata Metadata { get; }

    public ExecutionProviderChoice ExecutionProvider { get; }

    /// <summary>The prebuilt TensorRT engine the model runs, when it is an EP-context model.</summary>
    public TensorRtEngineContext? Engine { get; }

    public ImagePreprocessor Preprocessor { get; }

    /// <summary>Floats per embedding.</summary>
    public int Dimension { get; }

    /// <summary>Floats per pre-processed image.</summary>
    public int ImageSize => Preprocessor.ImageSize;

    /// <summary>The batch size a model exported with a fixed batch accepts; null for a dynamic batch.</summary>
    public int? FixedBatchSize { get; }

    /// <summary>Input buffer length (images) that <see cref="Run"/> needs for batches of up to <paramref name="batchSize"/> images.</summary>
    public int BufferImages(int batchSize) => FixedBatchSize is { } fixedBatch ? (batchSize + fixedBatch - 1) / fixedBatch * fixedBatch : batchSize;

    /// <summary>
    /// Creates the session and checks the model against its metadata (input and output names, image size,
    /// embedding dimension), so a mismatch fails here with the model's name rather than inside a batch.
    /// </summary>
    /// <exception cref="InvalidDataException">The model does not match <paramref name="metadata"/>.</exception>
    public static EmbeddingModel Load(string modelPath, ModelMetadata metadata, ExecutionProviderChoice provider, EmbeddingModelOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(provider);
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException($"Model file '{modelPath}' does not exist.", modelPath);
        }
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = options.Engine is not null ? GraphOptimizationLevel.ORT_DISABLE_ALL : GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
        };
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", options.AllowSpinning ? "1" : "0");
        switch (provider.Kind)
        {
            case ExecutionProviderKind.TensorRt:
                using (var tensorRt = new OrtTensorRTProviderOptions())
                {
                    var settings = new Dictionary<string, string> { ["device_id"] = options.DeviceId.ToString(System.Globalization.CultureInfo.InvariantCulture) };
                    if (options.Engine is null && options.TensorRtCacheDirectory is { } cache)
                    {
                        Directory.CreateDirectory(cache);
                        settings["trt_engine_cache_enable"] = "1";
                        settings["trt_engine_cache_path"] = cache;
                        settings["trt_timing_cache_enable"] = "1";
                        settings["trt_timing_cache_path"] = cache;
                    }
                    tensorRt.UpdateOptions(settings);
                    sessionOptions.AppendExecutionProvider_Tensorrt(tensorRt);
                }
                // Nodes TensorRT does not take run on CUDA rather than on the CPU.
                sessionOptions.AppendExecutionProvider_CUDA(options.DeviceId);
                break;
            case ExecutionProviderKind.Cuda:
                sessionOptions.AppendExecutionProvider_CUDA(options.DeviceId);
                break;
        }

        var session = new InferenceSession(modelPath, sessionOptions);
        try
        {
            var fixedBatch = Check(session, modelPath, metadata);
            return new EmbeddingModel(session, modelPath, metadata, provider, fixedBatch, options.Engine);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Embeds <paramref name="count"/> pre-processed images laid out back to back in <paramref name="input"/>
    /// and writes <paramref name="count"/> × <see cref="Dimension"/> floats to <paramref name="output"/>.
    /// For a fixed-batch model the input must hold <see cref="BufferImages"/> images; the unused tail is padding.
    /// </summary>
    public void Run(float[] input, int count, float[] output)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0)
        {
            return;
        }
        if (input.Length < (long)BufferImages(count) * ImageSize)
        {
            throw new ArgumentException($"The input holds {input.Length} floats; {count} images need {(long)BufferImages(count) * ImageSize}.", nameof(input));
        }
        if (output.Length < (long)count * Dimension)
        {
            throw new ArgumentException($"The output holds {output.Length} floats; {count} embeddings need {(long)count * Dimension}.", nameof(output));
        }
        if (FixedBatchSize is not { } fixedBatch)
        {
            RunBatch(input.AsMemory(0, count * ImageSize), count, output.AsMemory(0, count * Dimension));
            return;
        }
        var padded = new float[fixedBatch * Dimension];
        for (var start = 0; start < count; start += fixedBatch)
        {
            var images = Math.Min(fixedBatch, count - start);
            var batchInput = input.AsMemory(start * ImageSize, fixedBatch * ImageSize);
            if (images == fixedBatch)
            {
                RunBatch(batchInput, fixedBatch, output.AsMemory(start * Dimension, fixedBatch * Dimension));
                continue;
            }
            // The last, short batch: the padding images are computed and dropped.
            batchInput.Span[(images * ImageSize)..].Clear();
            RunBatch(batchInput, fixedBatch, padded);
            padded.AsSpan(0, images * Dimension).CopyTo(output.AsSpan(start * Dimension));
        }
    }

    public void Dispose() => _session.Dispose();

    private void RunBatch(Memory<float> input, int batch, Memory<float> output)
    {
        using var inputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input,
            [batch, 3, Preprocessor.Height, Preprocessor.Width]);
        using var outputValue = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, output, [batch, Dimension]);
        using var runOptions = new RunOptions();
        _session.Run(runOptions, _inputNames, [inputValue], _outputNames, [outputValue]);
    }

    private static int? Check(InferenceSession session, string modelPath, ModelMetadata metadata)
    {
        var name = Path.GetFileName(modelPath);
        var inputName = metadata.Input.Name;
        var outputName = metadata.Outputs[0].Name;
        if (session.InputMetadata.Count != 1 || !session.InputMetadata.TryGetValue(inputName, out var input))
        {
            throw new InvalidDataException(
                $"Model '{name}' has inputs [{string.Join(", ", session.InputMetadata.Keys)}]; its metadata describes the single input '{inputName}'.");
        }
        if (!session.OutputMetadata.TryGetValue(outputName, out var output))
        {
            throw new InvalidDataException(
                $"Model '{name}' has outputs [{string.Join(", ", session.OutputMetadata.Keys)}]; its metadata names the embedding output '{outputName}'.");
        }
        if (input.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float
            || output.ElementDataType != Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
        {
            throw new InvalidDataException($"Model '{name}' must take and return float32 tensors ('{inputName}' is {input.ElementDataType}, '{outputName}' is {output.ElementDataType}).");
        }
        var dims = input.Dimensions;
        var (height, width) = (metadata.Preprocessing.Height, metadata.Preprocessing.Width);
        if (dims.Length != 4 || dims[1] is not (3 or -1) || dims[2] is not -1 && dims[2] != height || dims[3] is not -1 && dims[3] != width)
        {
            throw new InvalidDataException(
                $"Model '{name}' takes '{inputName}' as [{string.Join(", ", dims)}]; its metadata pre-processes images to [B, 3, {height}, {width}].");
        }
        var dimension = metadata.EmbeddingDimension;
        if (dimension <= 0)
        {
            throw new InvalidDataException($"The metadata of model '{name}' gives output '{outputName}' no fixed embedding dimension ([{string.Join(", ", metadata.Outputs[0].Shape)}]).");
        }
        var outDims = output.Dimensions;
        if (outDims.Length != 2 || outDims[1] is not -1 && outDims[1] != dimension)
        {
            throw new InvalidDataException(
                $"Model '{name}' returns '{outputName}' as [{string.Join(", ", outDims)}]; its metadata expects one {dimension}-float embedding per image [B, {dimension}].");
        }
        return dims[0] > 0 ? dims[0] : null;
    }
}
