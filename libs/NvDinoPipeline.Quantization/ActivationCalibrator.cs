using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;

namespace NvDinoPipeline.Quantization;

/// <summary>One row-major float32 input batch for calibration.</summary>
public sealed record CalibrationBatch(float[] Data, long[] Shape)
{
    public int BatchSize => (int)Shape[0];
}

public sealed record CalibrationSettings
{
    public CalibrationMethod Method { get; init; } = CalibrationMethod.Entropy;

    /// <summary>Used by <see cref="CalibrationMethod.Percentile"/> only.</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>Histogram bins over [0, |x|max] for the percentile and entropy methods (TensorRT uses 2048).</summary>
    public int HistogramBins { get; init; } = 2048;

    /// <summary>
    /// Bytes of intermediate tensors fetched from one run. Larger models fetch their activations over several runs
    /// of the same batch instead of holding every one at once.
    /// </summary>
    public long MemoryBudgetBytes { get; init; } = 2L << 30;

    /// <summary>ONNX Runtime threads per operator; 0 uses every core.</summary>
    public int IntraOpThreads { get; init; }
}

/// <summary>
/// Measures the ranges of a model's activations: a copy of the model exposes the tensors a
/// <see cref="QuantizationPlan"/> quantises as extra graph outputs, and ONNX Runtime runs it over the
/// calibration batches. Min-max needs one pass; percentile and entropy a second one filling histograms over the
/// range the first pass found.
/// </summary>
public static class ActivationCalibrator
{
    public static CalibrationTable Calibrate(
        string modelPath,
        QuantizationPlan plan,
        IReadOnlyList<CalibrationBatch> batches,
        CalibrationSettings settings,
        string workDirectory,
        IProgress<double>? progress = null,
        CancellationToken cancellationToken = default) =>
        CalibrateEach(modelPath, plan, batches, settings, [settings.Method], workDirectory, progress, cancellationToken)[0];

    /// <summary>
    /// One calibration over the batches, and a table for each of <paramref name="methods"/> (in that order) from
    /// what it observed: the ranges of another method cost no further run of the model.
    /// <see cref="CalibrationSettings.Method"/> is ignored here.
    /// </summary>
    public static IReadOnlyList<CalibrationTable> CalibrateEach(
        string modelPath,
        QuantizationPlan plan,
        IReadOnlyList<CalibrationBatch> batches,
        CalibrationSettings settings,
        IReadOnlyList<CalibrationMethod> methods,
        string workDirectory,
        IProgress<double>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelPath);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(batches);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(methods);
        if (methods.Count == 0)
        {
            throw new ArgumentException("Calibration needs at least one method.", nameof(methods));
        }

        if (batches.Count == 0)
        {
            throw new ArgumentException("Calibration needs at least one batch of images.", nameof(batches));
        }

        if (settings.HistogramBins < RangeEstimators.Int8Levels)
        {
            throw new ArgumentOutOfRangeException(nameof(settings), settings.HistogramBins, $"CalibrationSettings.HistogramBins must be at least {RangeEstimators.Int8Levels}.");
        }

        Directory.CreateDirectory(workDirectory);
        var augmentedPath = Path.Combine(workDirectory, "calibration.onnx");
        var tensors = plan.ActivationTensors;
        WriteAugmentedModel(modelPath, tensors, augmentedPath);
        try
        {
            using var options = new SessionOptions
            {
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
                IntraOpNumThreads = settings.IntraOpThreads,
                LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            };
            using var session = new InferenceSession(augmentedPath, options);
            var inputName = session.InputMetadata.Keys.Single();
            var statistics = tensors.Select(t => new ActivationStatistics(t)).ToArray();
            var groups = OutputGroups(session, inputName, tensors, batches[0], settings.MemoryBudgetBytes);
            var histogram = methods.Any(m => m != CalibrationMethod.MinMax);
            var passes = histogram ? 2 : 1;
            var step = 0;
            var total = passes * batches.Count;

            for (var pass = 0; pass < passes; pass++)
            {
                if (pass == 1)
                {
                    foreach (var s in statistics)
                    {
                        s.StartHistogram(settings.HistogramBins, s.AbsMax);
                    }
                }

                foreach (var batch in batches)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var input = OrtValue.CreateTensorValueFromMemory(batch.Data, batch.Shape);
                    foreach (var group in groups)
                    {
                        var names = group.Select(i => tensors[i]).ToArray();
                        using var runOptions = new RunOptions();
                        using var results = session.Run(runOptions, [inputName], [input], names);
                        for (var k = 0; k < group.Length; k++)
                        {
                            var values = results[k].GetTensorDataAsSpan<float>();
                            if (pass == 0)
                            {
                                statistics[group[k]].AddRange(values);
                            }
                            else
                            {
                                statistics[group[k]].AddToHistogram(values);
                            }
                        }
                    }

                    progress?.Report((double)++step / total);
                }
            }

            var images = batches.Sum(b => b.BatchSize);
            var modelSha256 = Sha256Of(modelPath);
            return [.. methods.Select(method => Table(method, statistics, settings, images, batches.Count, modelSha256, cancellationToken))];
        }
        finally
        {
            File.Delete(augmentedPath);
            File.Delete(augmentedPath + ".data");
        }
    }

    private static CalibrationTable Table(CalibrationMethod method, ActivationStatistics[] statistics, CalibrationSettings settings, int images, int batches,
        string modelSha256, CancellationToken cancellationToken)
    {
        var amax = new double[statistics.Length];
        Parallel.For(0, statistics.Length, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            var s = statistics[i];
            amax[i] = method switch
            {
                CalibrationMethod.MinMax => s.AbsMax,
                CalibrationMethod.Percentile => RangeEstimators.Percentile(s.Histogram, s.HistogramMax, settings.Percentile),
                _ => RangeEstimators.Entropy(s.Histogram, s.HistogramMax),
            };
        });
        var ranges = statistics.Select((s, i) => (s, i)).ToDictionary(x => x.s.Name, x => new TensorRange(x.s.Min, x.s.Max, amax[x.i]), StringComparer.Ordinal);

        return new CalibrationTable
        {
            Method = method.ToSpecName(),
            Percentile = method == CalibrationMethod.Percentile ? settings.Percentile : null,
            Images = images,
            Batches = batches,
            ModelSha256 = modelSha256,
            Tensors = ranges,
        };
    }

    public static string Sha256Of(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static void WriteAugmentedModel(string modelPath, IReadOnlyList<string> tensors, string augmentedPath)
    {
        var model = OnnxModelReader.Load(modelPath, loadExternalData: true);
        var graph = model.Graph!;
        var produced = new HashSet<string>(graph.Node.SelectMany(n => n.Output), StringComparer.Ordinal);
        produced.UnionWith(graph.Input.Select(i => i.Name ?? ""));
        var outputs = new HashSet<string>(graph.Output.Select(o => o.Name ?? ""), StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            if (!produced.Contains(tensor))
            {
                throw new ArgumentException($"Tensor '{tensor}' is not produced by any node or graph input of '{modelPath}'.", nameof(tensors));
            }

            if (outputs.Add(tensor))
            {
                graph.Output.Add(new ValueInfoProto
                {
                    Name = tensor,
                    Type = new TypeProto { TensorType = new TensorTypeProto { ElemType = TensorDataType.Float } },
                });
            }
        }

        OnnxModelWriter.Save(model, augmentedPath);
    }

    /// <summary>
    /// Splits the tensors into groups whose fetched bytes per batch stay under the budget, measuring each tensor's
    /// size on one image of the first batch (or the whole batch when the model's batch is fixed)
    /// in one run.
    /// </summary>
    private static int[][] OutputGroups(InferenceSession session, string inputName, IReadOnlyList<string> tensors, CalibrationBatch first, long budget)
    {
        var dynamicBatch = session.InputMetadata[inputName].Dimensions[0] < 0;
        var probeImages = dynamicBatch ? 1 : first.BatchSize;
        var perImage = first.Data.Length / first.BatchSize;
        var probeShape = first.Shape.ToArray();
        probeShape[0] = probeImages;
        var probe = first.Data.AsMemory(0, perImage * probeImages);
        var bytes = new long[tensors.Count];
        using (var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, probe, probeShape))
        using (var runOptions = new RunOptions())
        using (var results = session.Run(runOptions, [inputName], [input], [.. tensors]))
        {
            for (var i = 0; i < tensors.Count; i++)
            {
                bytes[i] = results[i].GetTensorTypeAndShape().ElementCount * sizeof(float) / probeImages * first.BatchSize;
            }
        }

        var groups = new List<int[]>();
        var current = new List<int>();
        long used = 0;
        for (var i = 0; i < tensors.Count; i++)
        {
            if (current.Count > 0 && used + bytes[i] > budget)
            {
                groups.Add([.. current]);
                current.Clear();
                used = 0;
            }

            current.Add(i);
            used += bytes[i];
        }

        groups.Add([.. current]);
        return [.. groups];
    }
}
