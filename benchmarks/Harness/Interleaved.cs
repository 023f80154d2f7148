using System.Globalization;

namespace NvDinoPipeline.Benchmarks.Harness;

/// <summary>
/// One benchmark run: the product's cases and the same-run reference GEMM (libtorch, then ONNX Runtime) take turns, round
/// after round, so that all see the same machine; warm-up rounds first, then at least five timed ones, each printed with the
/// load average, and medians at the end. Every case measures a rate (higher is better).
/// </summary>
public sealed class Interleaved : IDisposable
{
    public const string TorchReference = "reference torch.mm";
    public const string OrtReference = "reference ORT MatMul";

    /// <summary>The pause before each case, in which the spinning threads of the one before go to sleep.</summary>
    public static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(500);

    private readonly List<(string Name, string Unit, Func<Task<double>> Measure)> _cases = [];
    private readonly GemmReference _gemm;
    private readonly int _warmups;
    private readonly int _repetitions;

    /// <param name="threads">The reference's threads (libtorch's and ONNX Runtime's); libtorch's current count when null.</param>
    public Interleaved(int repetitions = 5, int warmups = 1, int gemmSide = 2048, int? threads = null)
    {
        if (repetitions < 5)
        {
            throw new ArgumentOutOfRangeException(nameof(repetitions), repetitions, "A median needs at least 5 timed repetitions.");
        }
        _repetitions = repetitions;
        _warmups = warmups;
        _gemm = new GemmReference(gemmSide, threads);
    }

    public GemmReference Gemm => _gemm;

    public Interleaved Add(string name, string unit, Func<double> measure) => Add(name, unit, () => Task.FromResult(measure()));

    public Interleaved Add(string name, string unit, Func<Task<double>> measure)
    {
        _cases.Add((name, unit, measure));
        return this;
    }

    public async Task<InterleavedResult> RunAsync()
    {
        var agreement = _gemm.CheckAgreement();
        var before = Machine.LoadAverageText();
        Console.WriteLine($"Reference: fp32 GEMM {_gemm.Side}x{_gemm.Side} on {_gemm.Threads} threads, libtorch and ONNX Runtime agree to {agreement:G2} of the largest entry.");
        var all = new List<(string Name, string Unit, Func<Task<double>> Measure)>
        {
            (TorchReference, "GFLOP/s", () => Task.FromResult(_gemm.TorchGflops())),
        };
        all.AddRange(_cases);
        all.Add((OrtReference, "GFLOP/s", () => Task.FromResult(_gemm.OrtGflops())));
        var samples = all.ToDictionary(c => c.Name, _ => new List<double>());
        for (var round = 0; round < _warmups + _repetitions; round++)
        {
            var line = round < _warmups ? $"  warm-up {round + 1}:" : $"  round {round - _warmups + 1}:";
            foreach (var (name, unit, measure) in all)
            {
                // The thread pools of the previous case (OpenMP's, ONNX Runtime's) spin for a while after their last work;
                // measured at once, a case would share the cores with them.
                await Task.Delay(Settle);
                var value = await measure();
                line += string.Create(CultureInfo.InvariantCulture, $" {name} {value:F1} {unit} |");
                if (round >= _warmups)
                {
                    samples[name].Add(value);
                }
            }
            Console.WriteLine($"{line} load {Machine.LoadAverageText()}");
        }
        return new InterleavedResult(samples, all.ToDictionary(c => c.Name, c => c.Unit), _gemm.Side, before, Machine.LoadAverageText());
    }

    public void Dispose() => _gemm.Dispose();
}

/// <summary>The medians of one <see cref="Interleaved"/> run, its reference and whether the reference ran slowed.</summary>
public sealed class InterleavedResult(IReadOnlyDictionary<string, List<double>> samples, IReadOnlyDictionary<string, string> units, int gemmSide,
    string loadBefore, string loadAfter)
{
    public IReadOnlyDictionary<string, List<double>> Samples => samples;

    public string LoadBefore => loadBefore;

    public string LoadAfter => loadAfter;

    public double Median(string name) => Median(samples[name]);

    /// <summary>The machine's fp32 GEMM in this run: the better of the two libraries' medians.</summary>
    public double ReferenceGflops => Math.Max(Median(Interleaved.TorchReference), Median(Interleaved.OrtReference));

    public QuietReference? Quiet { get; } = QuietReference.For(gemmSide);

    /// <summary>Why this run gives no verdict, or null when its reference ran at its quiet speed.</summary>
    public string? Slowed => Quiet is { } quiet && ReferenceGflops < QuietReference.SlowedBelow * quiet.Gflops
        ? string.Create(CultureInfo.InvariantCulture,
            $"the reference GEMM ran at {ReferenceGflops:F1} GFLOP/s, {100 * (1 - ReferenceGflops / quiet.Gflops):F0}% below its quiet {quiet.Gflops:F1} ({quiet.Recorded}): no verdict")
        : null;

    /// <summary>"met", "not met", or why there is no verdict; <paramref name="ratio"/> is measured, <paramref name="target"/> the least it may be.</summary>
    public string Verdict(double ratio, double target)
    {
        if (Slowed is { } slowed)
        {
            return slowed;
        }
        var verdict = ratio >= target ? "met" : "not met";
        return Quiet is null ? $"{verdict} (no quiet reference is recorded for {Machine.CpuModel} on {Environment.ProcessorCount} cores: record one with the `reference` mode)" : verdict;
    }

    /// <summary>Each case's median and its spread, one Markdown row per case.</summary>
    public void PrintMedians()
    {
        Console.WriteLine();
        Console.WriteLine($"Load average {loadBefore} before, {loadAfter} after.");
        Console.WriteLine("| case | median | min | max | unit |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (name, values) in samples)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {Median(values):F2} | {values.Min():F2} | {values.Max():F2} | {units[name]} |"));
        }
        var (torchRate, ortRate) = (Median(Interleaved.TorchReference), Median(Interleaved.OrtReference));
        if (Math.Min(torchRate, ortRate) < 0.75 * Math.Max(torchRate, ortRate))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Reference: libtorch ({torchRate:F1}) and ONNX Runtime ({ortRate:F1} GFLOP/s) differ by more than 25%: the slower one is not getting this machine's GEMM."));
        }
        if (Slowed is { } slowed)
        {
            Console.WriteLine($"Reference: {slowed}.");
        }
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
