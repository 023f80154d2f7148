using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace NvDinoPipeline.Onnx;

/// <summary>One named float32 tensor produced by a model run.</summary>
public sealed record OnnxTensor(string Name, float[] Data, long[] Shape);

/// <summary>
/// An ONNX Runtime CPU session over a model file with one float32 input. Records the warnings ONNX Runtime
/// logged while creating the session (unsupported ops, unused initializers, failed shape inference).
/// </summary>
public sealed class OnnxModelRunner : IDisposable
{
    private static int _sessions;
    private readonly InferenceSession _session;
    private readonly string _inputName;

    /// <param name="modelPath">Model file; external data files are resolved relative to its folder.</param>
    /// <param name="intraOpThreads">Threads per operator; 0 lets ONNX Runtime use every core.</param>
    public OnnxModelRunner(string modelPath, int intraOpThreads = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentOutOfRangeException.ThrowIfNegative(intraOpThreads);
        if (!File.Exists(modelPath))
        {
            throw new FileNotFoundException($"ONNX model '{modelPath}' does not exist.", modelPath);
        }

        var capturing = OnnxRuntimeLog.EnsureInstalled();
        var logId = $"session-{Interlocked.Increment(ref _sessions)}";
        using var options = new SessionOptions
        {
            LogId = logId,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = intraOpThreads,
        };
        using (OnnxRuntimeLog.Listen(logId, out var sink))
        {
            _session = new InferenceSession(modelPath, options);
            CreationWarnings = capturing ? [.. sink] : null;
        }

        if (_session.InputMetadata.Count != 1)
        {
            var inputs = string.Join(", ", _session.InputMetadata.Keys);
            _session.Dispose();
            throw new NotSupportedException($"ONNX model '{modelPath}' has inputs [{inputs}]; this runner feeds exactly one float32 input.");
        }

        _inputName = _session.InputMetadata.Keys.Single();
        ModelPath = modelPath;
    }

    public string ModelPath { get; }
    public string InputName => _inputName;
    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    /// <summary>
    /// Messages (warning or worse) ONNX Runtime logged while creating this session; null when the process's ONNX
    /// Runtime environment was created by another component and its log cannot be captured.
    /// </summary>
    public IReadOnlyList<string>? CreationWarnings { get; }

    /// <summary>Runs the model on one row-major float32 batch and returns every output, in the model's output order.</summary>
    public IReadOnlyList<OnnxTensor> Run(float[] input, IReadOnlyList<long> shape)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(shape);
        var count = shape.Aggregate(1L, (a, d) => a * d);
        if (count != input.Length)
        {
            throw new ArgumentException($"Input '{_inputName}' has {input.Length} values but shape [{string.Join(", ", shape)}] holds {count}.", nameof(input));
        }

        using var value = OrtValue.CreateTensorValueFromMemory(input, [.. shape]);
        using var runOptions = new RunOptions();
        using var results = _session.Run(runOptions, [_inputName], [value], _session.OutputNames);
        var outputs = new List<OnnxTensor>(results.Count);
        for (var i = 0; i < results.Count; i++)
        {
            var info = results[i].GetTensorTypeAndShape();
            if (info.ElementDataType != TensorElementType.Float)
            {
                throw new NotSupportedException($"Output '{_session.OutputNames[i]}' is {info.ElementDataType}; this runner reads float32 outputs.");
            }

            outputs.Add(new OnnxTensor(_session.OutputNames[i], results[i].GetTensorDataAsSpan<float>().ToArray(), info.Shape));
        }

        return outputs;
    }

    public void Dispose() => _session.Dispose();
}
