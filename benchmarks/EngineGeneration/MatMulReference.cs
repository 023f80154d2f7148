using Microsoft.ML.OnnxRuntime;
using NvDinoPipeline.Onnx;
using NvDinoPipeline.Onnx.Proto;

/// <summary>
/// A plain fp32 matrix multiply, 1024×1024 by 1024×1024, in ONNX Runtime (MLAS SGEMM) on the benchmark's threads:
/// once with both inputs fed per run, once with B a constant initializer, which ONNX Runtime prepacks as it does a
/// model's weights.
/// </summary>
internal sealed class MatMulReference : IDisposable
{
    private const int N = 1024;
    public const double Flops = 2.0 * N * N * N;

    private readonly InferenceSession _plain;
    private readonly InferenceSession _packed;
    private readonly OrtValue _a;
    private readonly OrtValue _b;

    public MatMulReference(int threads)
    {
        var random = new Random(5);
        var a = new float[N * N];
        var b = new float[N * N];
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = random.NextSingle() - 0.5f;
            b[i] = random.NextSingle() - 0.5f;
        }

        _a = OrtValue.CreateTensorValueFromMemory(a, [N, N]);
        _b = OrtValue.CreateTensorValueFromMemory(b, [N, N]);
        _plain = Session(Model(b, packed: false), threads);
        _packed = Session(Model(b, packed: true), threads);
    }

    public void RunPlain()
    {
        using var options = new RunOptions();
        using var results = _plain.Run(options, ["a", "b"], [_a, _b], ["c"]);
    }

    public void RunPacked()
    {
        using var options = new RunOptions();
        using var results = _packed.Run(options, ["a"], [_a], ["c"]);
    }

    public void Dispose()
    {
        _plain.Dispose();
        _packed.Dispose();
        _a.Dispose();
        _b.Dispose();
    }

    private static byte[] Model(float[] b, bool packed)
    {
        var builder = new OnnxGraphBuilder("matmul");
        var x = builder.AddInput("a", TensorDataType.Float, [N, N]);
        var y = packed ? builder.AddInitializer("b", b, [N, N]) : builder.AddInput("b", TensorDataType.Float, [N, N]);
        builder.AddNode("MatMul", [x, y], output: "c");
        builder.AddOutput("c", TensorDataType.Float, [N, N]);
        var path = Path.Combine(Path.GetTempPath(), $"matmul-{Environment.ProcessId}-{packed}.onnx");
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

    private static InferenceSession Session(byte[] model, int threads) =>
        new(model, new SessionOptions { IntraOpNumThreads = threads, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL });
}
