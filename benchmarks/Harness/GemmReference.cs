using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;
using TorchSharp;

namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>
/// The same-run ceiling every benchmark's figures are divided by: one fp32 GEMM of <see cref="Side"/>² by <see cref="Side"/>²
/// through libtorch (<c>torch.mm</c>, the BLAS the training step runs on) and through ONNX Runtime (a one-node MatMul graph
/// whose second matrix is a constant, which MLAS prepacks as it does a model's weights: what the exported model runs on),
/// on the same inputs and threads. The two are checked against each other: their
/// products must agree, and a rate far below the other's says that library is not getting the machine's GEMM.
/// </summary>
public sealed class GemmReference : IDisposable
{
    /// <summary>Multiplies per timed repetition of each library.</summary>
    private const int Multiplies = 3;

    private readonly torch.Tensor _a;
    private readonly torch.Tensor _b;
    private readonly InferenceSession _session;
    private readonly OrtValue _ortA;
    private readonly float[] _aData;
    private readonly float[] _bData;

    public GemmReference(int side = 2048, int? threads = null)
    {
        Side = side;
        if (threads is { } count && count != torch.get_num_threads())
        {
            torch.set_num_threads(count);
        }
        Threads = torch.get_num_threads();
        var random = new Random(11);
        _aData = new float[side * side];
        _bData = new float[side * side];
        for (var i = 0; i < _aData.Length; i++)
        {
            _aData[i] = random.NextSingle() - 0.5f;
            _bData[i] = random.NextSingle() - 0.5f;
        }
        _a = torch.tensor(_aData, [side, side]);
        _b = torch.tensor(_bData, [side, side]);
        _ortA = OrtValue.CreateTensorValueFromMemory(_aData, [side, side]);
        var options = new SessionOptions { IntraOpNumThreads = Threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        _session = new InferenceSession(Model(side, _bData), options);
    }

    public int Side { get; }

    public int Threads { get; }

    /// <summary>FLOPs of one multiply (a multiply-add counts 2).</summary>
    public double Flops => 2.0 * Side * Side * Side;

    /// <summary>
    /// The largest difference between the two libraries' products, relative to the largest entry; throws when they disagree
    /// (above 1e-4), since then one of them is not computing the reference at all.
    /// </summary>
    public double CheckAgreement()
    {
        using var torchProduct = _a.mm(_b);
        var expected = torchProduct.data<float>().ToArray();
        using var options = new RunOptions();
        using var results = _session.Run(options, ["a"], [_ortA], ["c"]);
        var actual = results[0].GetTensorDataAsSpan<float>();
        double worst = 0, largest = 0;
        for (var i = 0; i < expected.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
            largest = Math.Max(largest, Math.Abs(expected[i]));
        }
        var relative = worst / largest;
        if (relative > 1e-4)
        {
            throw new InvalidOperationException($"libtorch and ONNX Runtime disagree on the reference GEMM: largest difference {relative:G3} of the largest entry.");
        }
        return relative;
    }

    /// <summary>GFLOP/s of <c>torch.mm</c>, one timed repetition.</summary>
    public double TorchGflops()
    {
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Multiplies; i++)
        {
            _a.mm(_b).Dispose();
        }
        return Multiplies * Flops / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>GFLOP/s of ONNX Runtime's MatMul, one timed repetition.</summary>
    public double OrtGflops()
    {
        using var options = new RunOptions();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < Multiplies; i++)
        {
            using var results = _session.Run(options, ["a"], [_ortA], ["c"]);
        }
        return Multiplies * Flops / clock.Elapsed.TotalSeconds / 1e9;
    }

    public void Dispose()
    {
        _session.Dispose();
        _ortA.Dispose();
        _a.Dispose();
        _b.Dispose();
    }

    private static byte[] Model(int side, float[] b)
    {
        var builder = new OnnxGraphBuilder("gemm-reference");
        var x = builder.AddInput("a", TensorDataType.Float, [side, side]);
        var y = builder.AddInitializer("b", b, [side, side]);
        builder.AddNode("MatMul", [x, y], output: "c");
        builder.AddOutput("c", TensorDataType.Float, [side, side]);
        var path = Path.Combine(Path.GetTempPath(), $"gemm-reference-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        OnnxModelWriter.Save(builder.ToModel(17, "benchmark", "1"), path);
        try
        {
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
